"""The CPU set (CI) and the GPU set (Unsloth, bitsandbytes) run the same versions of what they share."""
from conftest import ROOT


def pins(name):
    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            pkg, ver = line.split("==")
            out[pkg.lower()] = ver
    return out


def test_shared_pins_agree():
    cpu, gpu = pins("requirements.txt"), pins("requirements-gpu.txt")
    shared = set(cpu) & set(gpu)
    assert {"transformers", "peft", "accelerate", "datasets"} <= shared
    assert {k: cpu[k] for k in shared} == {k: gpu[k] for k in shared}
    assert cpu["torch"] == "2.13.0" and "torch" not in gpu  # CI's CPU build; the GPU set takes a CUDA build
