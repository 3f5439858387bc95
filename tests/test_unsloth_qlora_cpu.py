"""The GPU training paths' Python, run on the CPU: Unsloth (its CPU fallback: its loading, patching and LoRA code,
none of its Triton kernels) and QLoRA (bitsandbytes' CPU 4-bit NF4 layers), with the versions the kit pins.
Their speed and memory are GPU questions (tests/test_gpu.py, bench/RESULTS.md); here, that they train, save and
evaluate. Unsloth patches transformers and peft when imported, so it runs in a process of its own."""
import importlib.util
import json
import subprocess
import sys

import pytest

import evaluate
from helpers import ROOT, math_cot_rows, metrics, write_jsonl


def recipe(tmp_path, model_dir, backend, finetune):
    data = write_jsonl(tmp_path / "data.jsonl", math_cot_rows(16))
    p = tmp_path / "r.yaml"
    p.write_text(f"""
model: {{name_or_path: {model_dir}, backend: {backend}, finetune: {finetune}, gradient_checkpointing: false}}
lora: {{r: 4, lora_alpha: 8}}
data: {{path: {data}, max_length: 256}}
train: {{output_dir: {tmp_path / 'run'}, per_device_train_batch_size: 2, gradient_accumulation_steps: 2,
        max_steps: 3, learning_rate: 1.0e-2}}
checkpoints: {{steps: [], every: 0, doubling_from: 0}}
""")
    return p


@pytest.fixture(scope="module")
def toy_qwen3(tmp_path_factory):
    from rsft.toy import build_model

    return build_model("qwen3-tiny", tmp_path_factory.mktemp("toy-qwen3"))


@pytest.mark.skipif(importlib.util.find_spec("unsloth") is None, reason="unsloth is not installed")
def test_unsloth_trains_on_the_cpu_and_its_adapter_loads_and_is_scored(tmp_path, toy_qwen3):
    from peft import AutoPeftModelForCausalLM

    res = subprocess.run([sys.executable, str(ROOT / "train.py"), str(recipe(tmp_path, toy_qwen3, "unsloth", "lora"))],
                         cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Unsloth's CPU fallback" in res.stdout
    run = tmp_path / "run"
    ckpt = run / "checkpoints/step00003"
    assert json.loads((ckpt / "meta.json").read_text())["backend"] == "unsloth"
    losses = [r["loss"] for r in metrics(run)]
    assert len(losses) == 3 and losses[-1] < losses[0]  # lr 1e-2 on 16 rows: the loss falls in 3 steps
    model = AutoPeftModelForCausalLM.from_pretrained(ckpt)  # the base by the exact name the recipe gave
    assert model.peft_config["default"].base_model_name_or_path == toy_qwen3 and model.peft_config["default"].r == 4
    out = tmp_path / "eval"
    assert evaluate.main(["--model", toy_qwen3, "--adapter", str(ckpt), "--suite", "countdown", "--preset",
                          "quickstart", "--limit", "2", "--backend", "hf", "--out", str(out)]) == 0
    result = json.loads((out / "countdown.json").read_text())
    assert result["adapter"] == str(ckpt) and result["n"] == 2 and result["value"] is not None


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="bitsandbytes is not installed")
def test_qlora_trains_on_the_cpu_over_a_4_bit_base(tmp_path, toy_qwen3, monkeypatch):
    import bitsandbytes as bnb

    import train
    from rsft import models

    seen = {}
    real = models.load_for_training

    def load(recipe_):
        loaded = real(recipe_)
        layer = loaded.model.get_base_model().model.layers[0].self_attn.q_proj
        seen["base"] = type(layer.base_layer)
        seen["quant"] = layer.base_layer.weight.quant_state.quant_type
        return loaded

    monkeypatch.setattr(models, "load_for_training", load)
    assert train.main([str(recipe(tmp_path, toy_qwen3, "hf", "qlora"))]) == 0
    assert seen == {"base": bnb.nn.Linear4bit, "quant": "nf4"}
    losses = [r["loss"] for r in metrics(tmp_path / "run")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    meta = json.loads((tmp_path / "run/checkpoints/step00003/meta.json").read_text())
    assert meta["finetune"] == "qlora"
