"""GPU path: Unsloth and transformers+peft, LoRA and 4-bit QLoRA, resume, exact base name, evaluation on the GPU.

Marked `gpu`: skipped on CPU (see conftest.py); bench/gpu_check.sh runs them on a CUDA machine with
requirements-gpu.txt installed. The model is Qwen3's architecture at toy size with random weights and a tokenizer
trained locally (rsft/toy.py), so nothing is downloaded.
"""
import json
import os
import signal

import pytest

import evaluate
import train
from helpers import make_recipe, metrics
from rsft.catalogue import PRESETS
from rsft.trainer import Trainer

pytestmark = pytest.mark.gpu
BACKENDS = [("unsloth", "lora"), ("unsloth", "qlora"), ("hf", "lora"), ("hf", "qlora")]


@pytest.fixture(scope="module")
def toy_qwen3_dir(tmp_path_factory):
    from rsft.toy import build_model

    return build_model("qwen3-tiny", tmp_path_factory.mktemp("toy-qwen3"), device="cuda")


def overrides(backend, finetune):
    return [f"model.backend={backend}", f"model.finetune={finetune}", "model.gradient_checkpointing=true"]


@pytest.mark.parametrize("backend,finetune", BACKENDS)
def test_training_steps_save_an_adapter_naming_the_exact_base(tmp_path, toy_qwen3_dir, backend, finetune):
    p = make_recipe(tmp_path, toy_qwen3_dir)
    assert train.main([str(p), *overrides(backend, finetune), "train.max_steps=3"]) == 0
    run = tmp_path / "run"
    ckpt = run / "checkpoints/step00003"
    assert json.loads((ckpt / "adapter_config.json").read_text())["base_model_name_or_path"] == toy_qwen3_dir
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["backend"] == backend and meta["finetune"] == finetune
    recs = metrics(run)
    assert [r["step"] for r in recs] == [1, 2, 3]
    assert all(r["loss"] == r["loss"] and r["loss"] > 0 for r in recs)  # finite, positive
    assert all(r["peak_memory_gb"] > 0 for r in recs)


@pytest.mark.parametrize("backend,finetune", [("unsloth", "lora"), ("hf", "qlora")])
def test_resume_after_ctrl_c_continues_from_the_saved_step(tmp_path, toy_qwen3_dir, monkeypatch, backend, finetune):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    train.main([str(make_recipe(a, toy_qwen3_dir)), *overrides(backend, finetune)])
    recipe_b = make_recipe(b, toy_qwen3_dir)
    real_log = Trainer._log

    def interrupt_at_step_5(self, rec):
        real_log(self, rec)
        if rec["step"] == 5:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Trainer, "_log", interrupt_at_step_5)
    train.main([str(recipe_b), *overrides(backend, finetune)])
    assert json.loads((b / "run/resume/meta.json").read_text())["step"] == 5
    monkeypatch.setattr(Trainer, "_log", real_log)
    train.main([str(recipe_b), *overrides(backend, finetune)])
    la, lb = metrics(a / "run"), metrics(b / "run")
    assert [r["step"] for r in lb] == list(range(1, 9))
    # bf16 kernels on a GPU are not bit-deterministic; a restart from scratch would differ far more than 5%
    assert [r["loss"] for r in lb] == pytest.approx([r["loss"] for r in la], rel=5e-2)


@pytest.mark.parametrize("backend", ["hf", "vllm"])
def test_evaluation_of_base_and_adapter_on_the_gpu(tmp_path, toy_qwen3_dir, backend):
    if backend == "vllm":
        pytest.importorskip("vllm", reason="vllm is not installed on this GPU machine")
    p = make_recipe(tmp_path, toy_qwen3_dir)
    train.main([str(p), *overrides("hf", "lora"), "train.max_steps=3", "eval.suite=countdown",
                "eval.preset=quickstart"])
    assert evaluate.main([str(tmp_path / "run"), "--steps", "0,3", "--backend", backend]) == 0
    for step in (0, 3):
        res = json.loads((tmp_path / f"run/eval/quickstart/step{step:05d}/countdown.json").read_text())
        assert res["backend"] == backend and res["n"] == PRESETS["quickstart"].in_domain_limit and 0.0 <= res["value"] <= 1.0
        assert res["adapter"] is None if step == 0 else res["adapter"].endswith("step00003")
