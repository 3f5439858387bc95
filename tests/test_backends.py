"""Which generation backend evaluates, and what it is handed, on a GPU machine (faked here).

vLLM's arguments are checked against what lm-eval's VLLM class and vLLM accept: the unmerged adapter, a
max_lora_rank vLLM allows, prefix caching, and the paper's released checkpoints, which live in subfolders that vLLM
cannot address. The vLLM path itself runs in tests/test_vllm.py (vLLM's CPU build) and tests/test_gpu.py.
"""
import importlib.util
import json

import pytest

import evaluate
from rsft.errors import UserError
from rsft.catalogue import Preset
from rsft.eval_worker import vllm_args
from rsft.specs import ModelSpec, WorkerSpec


def spec(tmp_path, backend, adapter_r=None, subfolder=None):
    adapter = None
    if adapter_r:
        adapter = tmp_path / "adapter"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text(json.dumps({"r": adapter_r}))
    model = ModelSpec(base=str(tmp_path), revision="abc", subfolder=subfolder,
                      adapter=str(adapter) if adapter else None, lora_rank=evaluate.lora_rank(adapter))
    return WorkerSpec(model=model, step=0, tasks=("math500",), preset_name="paper", preset=Preset(seed=7),
                      data_dir="", out_dir="", backend=backend, device="cuda", tensor_parallel_size=2)


@pytest.mark.parametrize("r,rank", [(4, 8), (16, 16), (64, 64), (100, 128)])
def test_vllm_gets_the_unmerged_adapter_with_a_rank_it_accepts(tmp_path, r, rank):
    args = vllm_args(spec(tmp_path, "vllm", adapter_r=r))
    assert args["lora_local_path"] == str(tmp_path / "adapter") and args["max_lora_rank"] == rank
    assert args["enable_prefix_caching"] is True and args["tensor_parallel_size"] == 2 and args["seed"] == 7
    assert "peft" not in args and "device" not in args  # hf-only keys would be passed on to vLLM's engine


def test_vllm_reads_a_checkpoint_subfolder_by_its_path(tmp_path):
    args = vllm_args(spec(tmp_path, "vllm", subfolder="step640"))
    assert args["pretrained"] == str(tmp_path / "step640") and "revision" not in args and "subfolder" not in args


def test_backend_choice(monkeypatch, capsys):
    import torch

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n, *a))
    with pytest.raises(UserError, match="--backend vllm needs vllm"):
        evaluate.pick_generation_backend("vllm")
    monkeypatch.setattr(importlib.util, "find_spec", real)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert evaluate.pick_generation_backend("auto") == "hf"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n, *a))
    assert evaluate.pick_generation_backend("auto") == "hf"
    assert "vllm is not installed" in capsys.readouterr().out
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real(n, *a))
    assert evaluate.pick_generation_backend("auto") == "vllm"
