"""Precision by what the card computes: bfloat16 only where native, float16 with loss scaling elsewhere (a T4),
and float16 training's gradients kept close to float32's by the scaling."""
import pytest
import torch

import evaluate
from helpers import build_trainer, make_recipe
from rsft.config import load_recipe
from rsft.errors import UserError
from rsft.models import native_dtype, pick_dtype

CARDS = {"t4": ("Tesla T4", (7, 5)), "v100": ("Tesla V100-SXM2-16GB", (7, 0)), "a100": ("NVIDIA A100-SXM4-40GB", (8, 0)),
         "l4": ("NVIDIA L4", (8, 9))}


def fake_card(monkeypatch, card):
    name, cc = CARDS[card]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: cc)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 answers: emulated


@pytest.mark.parametrize("card, want", [("t4", "float16"), ("v100", "float16"), ("a100", "bfloat16"),
                                        ("l4", "bfloat16")])
def test_bfloat16_only_where_the_card_computes_it(monkeypatch, tmp_path, card, want):
    fake_card(monkeypatch, card)
    recipe = load_recipe(make_recipe(tmp_path, "some/model"), [])  # model.dtype: auto
    dtype, why = pick_dtype(recipe)
    assert dtype == getattr(torch, want) and f"compute capability {CARDS[card][1][0]}.{CARDS[card][1][1]}" in why
    assert evaluate.eval_dtype("cuda")[0] == want  # the evaluation worker loads the models the same way


def test_on_cpu_training_stays_float32_and_an_asked_bfloat16_on_a_t4_is_named_slow(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_dtype()[0] == "float32"
    assert pick_dtype(load_recipe(make_recipe(tmp_path, "some/model"), []))[0] == torch.float32
    fake_card(monkeypatch, "t4")
    dtype, why = pick_dtype(load_recipe(make_recipe(tmp_path, "some/model"), ["model.dtype=bfloat16"]))
    assert dtype == torch.bfloat16 and "auto would pick float16" in why


@pytest.fixture(scope="module")
def small_gradient_model(tmp_path_factory, tokenizer):
    """The tiny Llama with weights drawn 40x smaller (initializer_range 5e-4): its adapter gradients are as small
    as a deep model's, where float16 flushes many of them to zero (the 135M model lost 36% of its gradient)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("small-grad")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True, initializer_range=5e-4)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def step_gradient(trainer):
    trainer._gradient(0)  # the step's gradient, unscaled
    g = torch.cat([p.grad.float().flatten() for p in trainer.model.parameters() if p.requires_grad])
    trainer.model.zero_grad(set_to_none=True)
    return g


def relative_error(got, want):
    return ((got - want).norm() / want.norm()).item()


TWO_ROWS = ["train.gradient_accumulation_steps=2"]  # a step of 2 rows: float16 matmuls are slow on a CPU
FLOAT16_TOLERANCE = 0.005  # relative L2 error of the step's adapter gradient against float32's (measured: 0.0006)


def test_float16_training_with_loss_scaling_stays_within_half_a_percent_of_float32(tmp_path, small_gradient_model):
    want = step_gradient(build_trainer(tmp_path / "f32", small_gradient_model, ["model.dtype=float32", *TWO_ROWS]))
    tr = build_trainer(tmp_path / "f16", small_gradient_model, ["model.dtype=float16", *TWO_ROWS])
    assert tr.scaler is not None and next(tr.model.parameters()).dtype == torch.float16
    assert relative_error(step_gradient(tr), want) < FLOAT16_TOLERANCE
    tr.scaler = torch.amp.GradScaler("cpu", init_scale=1.0)  # no scaling, as the loop was before: 1.9% off
    assert relative_error(step_gradient(tr), want) > 2 * FLOAT16_TOLERANCE


def test_a_float16_step_whose_scaled_gradient_overflows_is_redone_not_skipped(tmp_path, small_gradient_model):
    want = build_trainer(tmp_path / "f32", small_gradient_model, ["model.dtype=float32", *TWO_ROWS])
    tr = build_trainer(tmp_path / "f16", small_gradient_model, ["model.dtype=float16", *TWO_ROWS])
    tr.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # overflows float16 at once
    seen = []
    real_step = tr.optimizer.step
    tr.optimizer.step = lambda *a, **k: (seen.append(torch.cat([p.grad.flatten() for p in tr.model.parameters()
                                                                if p.requires_grad])), real_step(*a, **k))[1]
    loss, grad_norm, _, skipped = tr._one_step(0)
    assert not skipped and tr.scaler.get_scale() < 2.0**40 and len(seen) == 1
    w_loss, w_norm, _, _ = want._one_step(0)
    assert grad_norm == pytest.approx(w_norm, rel=FLOAT16_TOLERANCE) and loss == pytest.approx(w_loss, rel=1e-3)


def test_full_fine_tuning_in_float16_is_refused_in_one_line(tmp_path, tiny_model_dir):
    with pytest.raises(UserError, match="model.dtype: float32"):
        build_trainer(tmp_path, tiny_model_dir, ["model.dtype=float16", "model.finetune=full"])
