"""`pip install .` gives an importable `rsft` with its data files and the pins of requirements.txt, and never
the repository's scripts (an installed `evaluate.py` would shadow Hugging Face's `evaluate` package)."""
import importlib.util
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import ROOT, pins


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds from a copy of the sources (the build leaves its folders there, not in the checkout)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed; pip would fetch it to build")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "rsft", src / "rsft", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("rsft-*.whl")
    return path


def test_the_wheel_holds_the_package_its_data_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "rsft").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert package <= names, f"left out of the wheel: {sorted(package - names)}"
    assert {n.split("/")[0] for n in names} == {"rsft", wheel.name.split("-py3")[0] + ".dist-info"}


def test_the_wheel_requires_exactly_the_pins_of_requirements_txt(wheel):
    z = zipfile.ZipFile(wheel)
    meta = z.read(next(n for n in z.namelist() if n.endswith("/METADATA"))).decode()
    required = dict(line.split(": ", 1)[1].split("==") for line in meta.splitlines()
                    if line.startswith("Requires-Dist"))
    assert {k.lower(): v for k, v in required.items()} == pins("requirements.txt")


def test_installed_rsft_imports_from_anywhere_with_its_data(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import rsft, rsft.planner, rsft.results, rsft.judges.rubrics, rsft.tasks;"
            "print(rsft.__file__); print(len(rsft.planner.data()['gpus']) > 0, len(rsft.results.paper_data()['blocks']));"
            "print(sorted(p.name for p in rsft.judges.rubrics.PROMPTS_DIR.iterdir()));"
            "print(len(list(rsft.tasks.TASKS_DIR.rglob('*.yaml'))));"
            "import importlib.util; print(getattr(importlib.util.find_spec('evaluate'), 'origin', None))")
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    where, data, prompts, tasks, evaluate = res.stdout.splitlines()
    assert where.startswith(str(target)) and data.startswith("True ") and int(data.split()[1]) > 0
    assert prompts == "['harm.txt', 'refusal.txt']"
    assert int(tasks) == len(list((ROOT / "rsft/tasks").rglob("*.yaml")))
    assert not evaluate.startswith(str(target))  # Hugging Face's evaluate (or none), never the kit's script
