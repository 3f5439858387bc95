"""Training end to end on a tiny model: scheduled checkpoints, exact resume, loadable adapters, clear errors."""
import json
import os
import signal
import subprocess
import sys

import pytest

import train
from conftest import ROOT, math_cot_rows, write_jsonl
from rsft.errors import UserError
from rsft.trainer import Trainer


def make_recipe(tmp_path, model_dir, extra="", rows=16, name="r.yaml"):
    data = write_jsonl(tmp_path / "data.jsonl", math_cot_rows(rows))
    p = tmp_path / name
    p.write_text(f"""
model:
  name_or_path: {model_dir}
  backend: hf
  gradient_checkpointing: false
lora:
  r: 4
  lora_alpha: 8
  target_modules: [q_proj, v_proj]
data:
  path: {data}
  max_length: 256
train:
  output_dir: {tmp_path / 'run'}
  per_device_train_batch_size: 2
  gradient_accumulation_steps: 2
  num_train_epochs: 2
  learning_rate: 1.0e-2
checkpoints:
  steps: [3]
  every: 0
  doubling_from: 2
{extra}""")
    return p


def metrics(run):
    return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_tiny_run_writes_exactly_the_scheduled_checkpoints(tmp_path, tiny_model_dir):
    assert train.main([str(make_recipe(tmp_path, tiny_model_dir))]) == 0
    run = tmp_path / "run"
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step00002", "step00003", "step00004", "step00008"]  # 16 rows / 4 = 4 steps/epoch x 2
    meta = json.loads((run / "checkpoints/step00004/meta.json").read_text())
    assert meta["step"] == 4 and meta["epoch"] == 1.0 and meta["base_model"] == tiny_model_dir
    assert meta["tokens_seen"] > 0 and meta["loss"] > 0 and meta["wall_time_s"] > 0
    for f in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json"):
        assert (run / "checkpoints/step00004" / f).exists()
    # resume state only in the newest checkpoint; the others keep weights only
    assert [p.parent.name for p in run.glob("checkpoints/*/trainer_state.pt")] == ["step00008"]
    m = metrics(run)
    assert [r["step"] for r in m] == list(range(1, 9)) and m[-1]["loss"] < m[0]["loss"]
    assert (run / "recipe.yaml").exists() and json.loads((run / "data_stats.json").read_text())["kept"] == 16


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(tmp_path, tiny_model_dir, monkeypatch):
    a = tmp_path / "a"
    a.mkdir()
    dropout = "lora.lora_dropout=0.1"  # random dropout masks: equal losses need the RNG state restored too
    train.main([str(make_recipe(a, tiny_model_dir)), dropout])
    b = tmp_path / "b"
    b.mkdir()
    recipe_b = make_recipe(b, tiny_model_dir)
    real_log = Trainer._log

    def interrupt_at_step_5(self, rec):  # a Ctrl-C arriving during step 5
        real_log(self, rec)
        if rec["step"] == 5:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Trainer, "_log", interrupt_at_step_5)
    train.main([str(recipe_b), dropout])
    run_b = b / "run"
    assert json.loads((run_b / "resume/meta.json").read_text())["step"] == 5  # nothing lost since step 4's save
    assert [r["step"] for r in metrics(run_b)] == [1, 2, 3, 4, 5]
    monkeypatch.setattr(Trainer, "_log", real_log)
    train.main([str(recipe_b), dropout])  # the same command again continues
    la, lb = metrics(a / "run"), metrics(run_b)
    assert [r["step"] for r in lb] == list(range(1, 9))
    assert [r["loss"] for r in lb] == pytest.approx([r["loss"] for r in la], rel=1e-5)
    assert not (run_b / "resume").exists()  # superseded by the step-8 checkpoint


def test_rerunning_a_finished_run_does_nothing(tmp_path, tiny_model_dir, capsys):
    p = make_recipe(tmp_path, tiny_model_dir)
    train.main([str(p)])
    train.main([str(p)])
    assert "already complete" in capsys.readouterr().out


def test_checkpoint_loads_with_peft_on_its_base(tmp_path, tiny_model_dir):
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    train.main([str(make_recipe(tmp_path, tiny_model_dir))])
    ckpt = tmp_path / "run/checkpoints/step00008"
    assert json.loads((ckpt / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_model_dir
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    x = torch.tensor([[1, 2, 3, 4]])
    before = base(x).logits
    model = peft.PeftModel.from_pretrained(base, ckpt)
    after = model(x).logits
    assert not torch.allclose(before, after)  # the trained adapter changes the model


def test_a_different_recipe_in_the_same_run_folder_is_refused(tmp_path, tiny_model_dir):
    p = make_recipe(tmp_path, tiny_model_dir)
    train.main([str(p)])
    with pytest.raises(UserError, match="holds a run of a different recipe"):
        train.main([str(p), "train.learning_rate=1e-3"])


def test_tensorboard_logging(tmp_path, tiny_model_dir):
    train.main([str(make_recipe(tmp_path, tiny_model_dir)), "train.report_to=tensorboard"])
    assert list((tmp_path / "run").rglob("events.out.tfevents.*"))


def test_check_prints_the_plan_without_training(tmp_path, tiny_model_dir, capsys):
    assert train.main([str(make_recipe(tmp_path, tiny_model_dir)), "--check"]) == 0
    out = capsys.readouterr().out
    assert "effective batch 4 = 2 per device x 2 accumulation x 1 processes" in out
    assert "steps/epoch     4" in out and "total steps     8" in out and "checkpoints     2, 3, 4, 8" in out
    assert "p50" in out and "p99" in out and "over max_length 0 rows" in out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override,message", [
    ("checkpoints.steps=[100]", "lie beyond the last step (8)"),
    ("model.backend=unsloth", "unsloth needs a CUDA GPU"),
    ("model.finetune=qlora", "qlora loads the base in 4 bits"),
])
def test_bad_requests_fail_before_training(tmp_path, tiny_model_dir, override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train.main([str(make_recipe(tmp_path, tiny_model_dir)), override])


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learnig_rate: 1e-4\n")
    res = subprocess.run([sys.executable, str(ROOT / "train.py"), str(bad)], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "did you mean 'train.learning_rate'" in res.stderr
