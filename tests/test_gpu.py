"""GPU path: Unsloth LoRA and 4-bit QLoRA steps, the hf QLoRA fallback, resume, exact base name in the adapter.

Marked `gpu`: skipped on CPU (see conftest.py), run on a CUDA machine with requirements-gpu.txt installed.
"""
import json

import pytest

import train
from test_train import make_recipe

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def tiny_qwen3_dir(tmp_path_factory, tokenizer):
    """Qwen3's architecture (the paper's base family) at toy size, random weights, saved locally."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    out = tmp_path_factory.mktemp("tiny-qwen3")
    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=4096,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    Qwen3ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.mark.parametrize("backend,finetune", [("unsloth", "lora"), ("unsloth", "qlora"), ("hf", "qlora"),
                                              ("hf", "lora")])
def test_gpu_training_steps_resume_and_exact_base_name(tmp_path, tiny_qwen3_dir, backend, finetune):
    p = make_recipe(tmp_path, tiny_qwen3_dir)
    over = [f"model.backend={backend}", f"model.finetune={finetune}", "model.gradient_checkpointing=true"]
    assert train.main([str(p), *over, "train.max_steps=3"]) == 0
    run = tmp_path / "run"
    ckpt = run / "checkpoints/step00003"
    assert json.loads((ckpt / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_qwen3_dir
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["backend"] == backend and meta["finetune"] == finetune
    losses = [json.loads(l)["loss"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(l == l and l > 0 for l in losses)  # finite, positive
