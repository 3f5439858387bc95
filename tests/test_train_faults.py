"""train.py under faults: killed saves, damaged run folders, non-finite steps. Each is a one-line error naming what
to do, or a counted skip; no traceback, no half-written checkpoint listed or resumed, no step logged twice."""
import json
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

import train
from helpers import ROOT, make_recipe, metrics
from rsft.errors import UserError
from rsft.rundir import STATE_FILE, checkpoint_dirs
from rsft.trainer import Trainer


def run_to_step(tmp_path, model_dir, stop_after, *overrides):
    """A run stopped abruptly after `stop_after` steps (as a kill between saves would), checkpoints at 2 3 4 8."""
    real_log = Trainer._log

    def crash(self, rec):
        real_log(self, rec)
        if rec["step"] == stop_after:
            raise KeyboardInterrupt  # not the Ctrl-C handler's clean stop: nothing is saved

    recipe = make_recipe(tmp_path, model_dir)
    Trainer._log = crash
    try:
        with pytest.raises(KeyboardInterrupt):
            train.main([str(recipe), *overrides])
    finally:
        Trainer._log = real_log
    return recipe


@pytest.fixture(scope="module")
def stopped_at_5(tmp_path_factory, tiny_model_dir):
    """Killed during step 5: step00004 holds the newest resume state. Tests copy it."""
    tmp = tmp_path_factory.mktemp("stopped")
    return run_to_step(tmp, tiny_model_dir, 5), tmp / "run"


def copy_of(stopped, tmp_path):
    recipe, run = stopped
    shutil.copytree(run, tmp_path / "run")
    return [str(recipe), f"train.output_dir={tmp_path / 'run'}"]


def one_line_error(excinfo, *parts):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert part in msg, msg
    return msg


# ------------------------------------------------------------------------------------------------ checkpoints


def test_a_save_killed_midway_is_never_listed_and_is_removed_by_name_on_rerun(tmp_path, tiny_model_dir, capsys):
    """A kill while trainer_state.pt is being written leaves stepNNNNN.tmp with a complete meta.json (issue 14)."""
    import torch

    real_save = torch.save

    def killed_while_writing_the_state(obj, f, *a, **k):
        if str(f).endswith(f"step00004.tmp/{STATE_FILE}"):
            open(f, "wb").close()  # 0 bytes on disk, then the process is gone
            raise KeyboardInterrupt
        return real_save(obj, f, *a, **k)

    recipe = make_recipe(tmp_path, tiny_model_dir)
    torch.save = killed_while_writing_the_state
    try:
        with pytest.raises(KeyboardInterrupt):
            train.main([str(recipe)])
    finally:
        torch.save = real_save
    run = tmp_path / "run"
    assert (run / "checkpoints/step00004.tmp/meta.json").exists()
    assert [p.name for p in checkpoint_dirs(run)] == ["step00002", "step00003"]  # what evaluate.py lists
    capsys.readouterr()
    assert train.main([str(recipe)]) == 0  # resumes from step00003 instead of dying on the empty state
    out = capsys.readouterr().out
    assert "removed 1 incomplete save(s) of an interrupted run: checkpoints/step00004.tmp" in out
    assert "resuming from" in out and "step00003" in out
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step00002", "step00003", "step00004",
                                                                       "step00008"]
    assert [r["step"] for r in metrics(run)] == list(range(1, 9))


@pytest.mark.parametrize("full", [RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter "
                                                 "failed writing file data/0: file write failed, unexpected pos "
                                                 "1234 vs 5678"),  # torch's words for a full disk
                                    OSError(28, "No space left on device")])
def test_a_full_disk_during_a_save_says_so_in_one_line_and_keeps_the_previous_checkpoint(tmp_path, tiny_model_dir,
                                                                                         full):
    import torch

    real_save = torch.save

    def disk_fills_at_step_4(obj, f, *a, **k):
        if "step00004.tmp" in str(f):
            open(f, "wb").write(b"part of it")
            raise full
        return real_save(obj, f, *a, **k)

    recipe = make_recipe(tmp_path, tiny_model_dir)
    run = tmp_path / "run"
    torch.save = disk_fills_at_step_4
    try:
        with pytest.raises(UserError) as e:
            train.main([str(recipe)])
    finally:
        torch.save = real_save
    one_line_error(e, f"cannot write {run / 'checkpoints/step00004.tmp'}: the disk holding {run / 'checkpoints'} is "
                      "full", f"step 4 was not saved, {run / 'checkpoints/step00003'} is intact")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step00002", "step00003"]  # no half save left
    assert (run / "checkpoints/step00003" / STATE_FILE).exists()  # the newest state kept: the rerun resumes from it


def test_a_run_killed_before_its_first_checkpoint_logs_each_step_once(tmp_path, tiny_model_dir):
    run_to_step(tmp_path, tiny_model_dir, 1)
    with (tmp_path / "run/metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "lo')  # a line torn by the kill
    train.main([str(tmp_path / "r.yaml")])
    assert [r["step"] for r in metrics(tmp_path / "run")] == list(range(1, 9))


def test_kill_9_during_checkpoint_writes_again_and_again_resumes_to_the_uninterrupted_losses(tmp_path,
                                                                                             tiny_model_dir):
    """A real process, SIGKILLed at random moments while a checkpoint folder is being written, four times over."""
    every_step = "checkpoints.every=1"
    ref = tmp_path / "ref"
    ref.mkdir()
    train.main([str(make_recipe(ref, tiny_model_dir)), every_step])
    recipe = make_recipe(tmp_path, tiny_model_dir)
    run, ckpts = tmp_path / "run", tmp_path / "run/checkpoints"
    cmd = [sys.executable, str(ROOT / "train.py"), str(recipe), every_step]
    rng, kills, removed = random.Random(0), 0, 0
    for attempt in range(8):
        log = tmp_path / f"log{attempt}.txt"
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            while proc.poll() is None:
                if kills < 4 and ckpts.exists() and any(p.name.endswith(".tmp") for p in ckpts.iterdir()):
                    time.sleep(rng.uniform(0, 0.04))  # somewhere inside the save
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
                time.sleep(0.001)
            proc.wait()
        text = log.read_text()
        assert "Traceback" not in text and "EOFError" not in text, text[-2000:]
        removed += "incomplete save(s) of an interrupted run" in text
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, text[-2000:]
    assert proc.returncode == 0 and kills == 4
    assert removed >= 1  # at least one kill left a half-written folder that the next run named and removed
    la, lb = metrics(ref / "run"), metrics(run)
    assert [r["step"] for r in lb] == list(range(1, 9))
    assert [r["loss"] for r in lb] == pytest.approx([r["loss"] for r in la], rel=1e-5)
    assert [p.name for p in checkpoint_dirs(run)] == [f"step{s:05d}" for s in range(1, 9)]
    assert not [p for p in ckpts.iterdir() if not p.name.startswith("step") or "." in p.name]
    assert [p.parent.name for p in run.glob("checkpoints/*/trainer_state.pt")] == ["step00008"]


# ------------------------------------------------------------------------------------------------ damaged folders


def test_a_damaged_resume_state_is_one_line_naming_the_file(tmp_path, stopped_at_5):
    args = copy_of(stopped_at_5, tmp_path)
    (tmp_path / "run/checkpoints/step00004" / STATE_FILE).write_bytes(b"")
    with pytest.raises(UserError) as e:
        train.main(args)
    one_line_error(e, "step00004/trainer_state.pt cannot be read", "new train.output_dir")


def _snapshot(run):
    """The run's record with its bytes (checkpoints, metrics.jsonl, run.json): what a refused run leaves as it was
    (recipe.yaml is rewritten at start, here with the copy's train.output_dir)."""
    files = sorted((run / "checkpoints").rglob("*")) + [run / "metrics.jsonl", run / "run.json"]
    return {str(f.relative_to(run)): f.read_bytes() for f in files if f.is_file()}


@pytest.mark.parametrize("older_state", [False, True], ids=["no-state-anywhere", "an-older-checkpoint-has-state"])
def test_a_newest_checkpoint_without_its_state_is_refused_and_nothing_is_restarted(tmp_path, stopped_at_5,
                                                                                   older_state):
    """Drive sync lag or a deleted optimizer file: no silent restart from step 0 (or from an older state) over the
    run's checkpoints and metrics.jsonl; one line naming both ways on."""
    args = copy_of(stopped_at_5, tmp_path)
    run = tmp_path / "run"
    newest = run / "checkpoints/step00004"
    if older_state:
        shutil.copy(newest / STATE_FILE, run / "checkpoints/step00003" / STATE_FILE)
    (newest / STATE_FILE).unlink()
    before = _snapshot(run)
    with pytest.raises(UserError) as e:
        train.main(args)
    one_line_error(e, "step00004", "trainer_state.pt", "--resume-weights-only", "run.json", "train.output_dir")
    assert _snapshot(run) == before  # metrics.jsonl (5 lines) and every checkpoint as they were


def test_resume_weights_only_continues_at_the_newest_step_and_is_recorded(tmp_path, stopped_at_5):
    args = copy_of(stopped_at_5, tmp_path)
    run = tmp_path / "run"
    (run / "checkpoints/step00004" / STATE_FILE).unlink()
    old_lines = (run / "metrics.jsonl").read_text().splitlines()
    kept = {n: (run / "checkpoints" / n / "adapter_model.safetensors").read_bytes()
            for n in ("step00002", "step00003", "step00004")}
    assert train.main(args + ["--resume-weights-only"]) == 0
    new_lines = (run / "metrics.jsonl").read_text().splitlines()
    assert new_lines[:4] == old_lines[:4]  # steps 1-4 kept as written; step 5 (after the save) is redone
    assert [json.loads(l)["step"] for l in new_lines] == list(range(1, 9))
    # the schedule continues at step 5, not at the warmup's start
    assert json.loads(new_lines[4])["learning_rate"] == pytest.approx(json.loads(old_lines[4])["learning_rate"])
    for name, weights in kept.items():
        assert (run / "checkpoints" / name / "adapter_model.safetensors").read_bytes() == weights
    assert (run / "checkpoints/step00008" / STATE_FILE).exists()
    [rec] = json.loads((run / "run.json").read_text())["weights_only_resumes"]
    assert rec["step"] == 4 and rec["from"] == "checkpoints/step00004" and STATE_FILE in rec["missing"]


def test_a_damaged_meta_json_is_one_line_naming_the_file(tmp_path, stopped_at_5):
    args = copy_of(stopped_at_5, tmp_path)
    (tmp_path / "run/checkpoints/step00004/meta.json").write_text('{"step": 4, "tok')
    with pytest.raises(UserError) as e:
        train.main(args)
    one_line_error(e, "step00004/meta.json cannot be read")


def test_a_damaged_run_json_is_one_line(tmp_path, tiny_model_dir):
    (tmp_path / "run").mkdir()
    (tmp_path / "run/run.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(UserError) as e:
        train.main([str(make_recipe(tmp_path, tiny_model_dir))])
    one_line_error(e, "run.json is damaged", "train.output_dir")


def test_resuming_under_another_number_of_processes_is_refused(tmp_path, stopped_at_5):
    args = copy_of(stopped_at_5, tmp_path)
    meta = tmp_path / "run/checkpoints/step00004/meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "world_size": 2}))
    with pytest.raises(UserError) as e:
        train.main(args)
    one_line_error(e, "written by 2 processes and this run has 1", "relaunch with 2")


# ------------------------------------------------------------------------------------------------ training health


@pytest.fixture
def nan_model_dir(tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight[0, 0] = float("nan")
    out = tmp_path / "nan-model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return str(out)


def overflow_gradients_at(monkeypatch, steps):
    """An fp16-style overflow: the gradient of the given (1-based) steps holds an inf."""
    real = Trainer._forward_backward

    def forward_backward(self, step):
        out = real(self, step)
        if step + 1 in steps:
            next(p for p in self.model.parameters() if p.grad is not None).grad[0] = float("inf")
        return out

    monkeypatch.setattr(Trainer, "_forward_backward", forward_backward)


def test_a_nan_loss_at_the_first_step_stops_with_nothing_saved(tmp_path, nan_model_dir):
    recipe = make_recipe(tmp_path, nan_model_dir)
    with pytest.raises(UserError) as e:
        train.main([str(recipe)])
    one_line_error(e, "step 1: the loss is nan", "no checkpoint was saved before it", "nonfinite_grad_norm: skip")
    logged = tmp_path / "run/metrics.jsonl"
    assert checkpoint_dirs(tmp_path / "run") == [] and (not logged.exists() or logged.read_text() == "")


def test_the_cli_prints_a_non_finite_stop_as_one_line(tmp_path, nan_model_dir):
    res = subprocess.run([sys.executable, str(ROOT / "train.py"), str(make_recipe(tmp_path, nan_model_dir))],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: step 1: the loss is nan"), res.stderr[-2000:]


def test_a_non_finite_gradient_stops_the_run_naming_the_last_good_checkpoint(tmp_path, tiny_model_dir,
                                                                             monkeypatch):
    overflow_gradients_at(monkeypatch, {3})
    with pytest.raises(UserError) as e:
        train.main([str(make_recipe(tmp_path, tiny_model_dir))])
    one_line_error(e, "step 3: the loss is", "gradient norm inf",
                   f"the last good checkpoint is {tmp_path / 'run/checkpoints/step00002'} (step 2)")
    run = tmp_path / "run"
    assert [p.name for p in checkpoint_dirs(run)] == ["step00002"]  # step 3 was scheduled, never saved
    assert [r["step"] for r in metrics(run)] == [1, 2]


def test_an_update_that_makes_weights_non_finite_stops_before_they_are_saved(tmp_path, tiny_model_dir, monkeypatch):
    import torch

    real_step, calls = torch.optim.AdamW.step, []

    def step(self, *a, **k):
        out = real_step(self, *a, **k)
        calls.append(1)
        if len(calls) == 3:  # as learning_rate: .inf would
            self.param_groups[0]["params"][0].data.fill_(float("inf"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    with pytest.raises(UserError) as e:
        train.main([str(make_recipe(tmp_path, tiny_model_dir))])
    one_line_error(e, "step 3: its update", "made weights non-finite", "step00002 (step 2)")
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["step00002"]


def test_the_papers_rule_skips_a_step_with_a_non_finite_gradient_and_counts_it(tmp_path, tiny_model_dir,
                                                                               monkeypatch):
    import torch
    from safetensors.torch import load_file

    ref = tmp_path / "ref"
    ref.mkdir()
    train.main([str(make_recipe(ref, tiny_model_dir))])
    overflow_gradients_at(monkeypatch, {3})
    assert train.main([str(make_recipe(tmp_path, tiny_model_dir)), "train.nonfinite_grad_norm=skip"]) == 0
    run, m, m_ref = tmp_path / "run", metrics(tmp_path / "run"), metrics(ref / "run")
    assert [r["step"] for r in m] == list(range(1, 9))
    assert m[2]["skipped"] is True and m[2]["grad_norm"] is None
    assert [r["skipped_steps"] for r in m] == [0, 0, 1, 1, 1, 1, 1, 1] and "skipped" not in m[3]
    a, b = (load_file(run / f"checkpoints/step0000{s}/adapter_model.safetensors") for s in (2, 3))
    assert all(torch.equal(a[k], b[k]) for k in a)  # no update at step 3
    assert [r["learning_rate"] for r in m] == [r["learning_rate"] for r in m_ref]  # the schedule advanced (l.534)
    assert [r["loss"] for r in m[:3]] == pytest.approx([r["loss"] for r in m_ref[:3]], rel=1e-5)
    assert m[3]["loss"] != pytest.approx(m_ref[3]["loss"], rel=1e-6)
    assert json.loads((run / "checkpoints/step00008/meta.json").read_text())["skipped_steps"] == 1


def test_the_papers_rule_stops_after_five_skipped_steps_in_a_row(tmp_path, tiny_model_dir, monkeypatch):
    overflow_gradients_at(monkeypatch, {2, 3, 4, 5, 6, 7})
    with pytest.raises(UserError) as e:
        train.main([str(make_recipe(tmp_path, tiny_model_dir)), "train.nonfinite_grad_norm=skip"])
    one_line_error(e, "step 6: 5 steps in a row", "the last good checkpoint is", "step00004 (step 4)")
    assert [r.get("skipped", False) for r in metrics(tmp_path / "run")] == [False] + [True] * 5
