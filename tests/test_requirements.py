"""The CPU set (CI) and the GPU set (Unsloth, bitsandbytes) run the same versions of what they share."""
from helpers import ROOT, pins


def test_shared_pins_agree():
    cpu, gpu = pins("requirements.txt"), pins("requirements-gpu.txt")
    shared = set(cpu) & set(gpu)
    assert {"transformers", "peft", "accelerate", "datasets"} <= shared
    assert {k: cpu[k] for k in shared} == {k: gpu[k] for k in shared}
    assert cpu["torch"] == "2.13.0" and "torch" not in gpu  # CI's CPU build; the GPU set takes a CUDA build


def test_the_test_set_runs_the_gpu_sets_versions_of_what_they_share():
    test, gpu = pins("requirements-test.txt"), pins("requirements-gpu.txt")
    assert {"bitsandbytes", "trl"} <= set(test) & set(gpu)
    assert {k: test[k] for k in set(test) & set(gpu)} == {k: gpu[k] for k in set(test) & set(gpu)}
    assert not set(test) & set(pins("requirements.txt"))  # one pin per package
    readme = (ROOT / "README.md").read_text()
    for pkg in ("unsloth", "unsloth-zoo"):  # installed --no-deps by the test command, at the GPU set's versions
        assert f"{pkg}=={gpu[pkg]}" in readme


def test_ci_runs_exactly_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    command = next(readme[i + 1 + j] for i, line in enumerate(readme) if line.startswith("# 2. the tests")
                   for j in range(4) if readme[i + 1 + j].startswith("pip install"))
    assert command.endswith("python -m pytest -q")
    assert command in (ROOT / ".ci/run").read_text().splitlines()
