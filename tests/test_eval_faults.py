"""Faults on the evaluation side, each a one-line error or a redo, never a traceback or a lost result: a worker
that outlives evaluate.py, two workers on one step, cut-short files, a model folder without weights, bad specs."""
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import evaluate
from helpers import ROOT
from rsft.errors import UserError
from rsft.rundir import result_path, samples_path, write_json_atomic


def test_a_worker_dies_with_evaluate_py_even_after_kill_9(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys\nfrom rsft.processes import die_with_parent\n"
         "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
         "preexec_fn=die_with_parent)\nprint(p.pid, flush=True)\np.wait()"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent")


def test_a_second_worker_on_the_same_step_refuses_to_start(tmp_path):
    from rsft.catalogue import preset
    from rsft.eval_worker import run_worker
    from rsft.rundir import WORKER_LOCK, lock_folder
    from rsft.specs import ModelSpec, WorkerSpec

    out = tmp_path / "step00000"
    spec = WorkerSpec(model=ModelSpec(base="Qwen/Qwen3-4B-Base"), step=0, tasks=("countdown",),
                      preset_name="quickstart", preset=preset("quickstart"), data_dir=str(tmp_path),
                      out_dir=str(out), backend="hf", device="cpu", batch_size=8)
    out.mkdir()
    with open(out / WORKER_LOCK, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the first worker, still writing
        with pytest.raises(UserError, match=f"another evaluation is writing {out} now"):
            run_worker(spec)
    lock_folder(out, WORKER_LOCK, "busy").close()  # once it is done, the next one starts


def test_the_worker_and_the_judges_read_a_bad_spec_as_one_line(tmp_path):
    bad = tmp_path / "spec.json"
    bad.write_text('{"model": {"base": "m"}, "step": 0')  # cut short
    for module in ("rsft.eval_worker", "rsft.judges"):
        for path in (bad, tmp_path / "missing.json"):
            out = subprocess.run([sys.executable, "-m", module, str(path)], cwd=ROOT, capture_output=True, text=True)
            assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stderr.startswith("error: "), (
                module, out.stderr)


def test_a_model_folder_without_weights_is_refused_before_any_worker_starts(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(evaluate, "run_one", lambda spec: pytest.fail("a worker was started"))
    with pytest.raises(UserError, match="is not a model folder"):
        evaluate.main(["--model", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--suite", "countdown",
                       "--data-dir", str(tmp_path / "data")])


def test_the_report_names_a_cut_short_samples_file(tmp_path):
    import report

    run = tmp_path / "run"
    out = run / "eval" / "quickstart" / "step00000"
    (run / "recipe.yaml").parent.mkdir(parents=True)
    (run / "recipe.yaml").write_text("model:\n  name_or_path: embedded:smollm2-135m-instruct\ndata:\n  path: "
                                     "embedded:countdown\n")
    write_json_atomic(result_path(out, "countdown"), {
        "task": "countdown", "step": 0, "value": 0.5, "stderr": 0.1, "preset_name": "quickstart", "preset": {},
        "grader_version": 2, "group": "in_domain", "n": 2, "k": 1, "no_answer_rate": 0.0})
    samples_path(out, "countdown").write_text(json.dumps({"doc_id": 0, "doc_acc": 1.0}) + '\n{"doc_id": 1, "doc')
    proc = subprocess.run([sys.executable, "report.py", str(run), "--out", str(tmp_path / "rep")], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "countdown.samples.jsonl is cut short" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "report.py"])
def test_help_shows_the_usage_examples(script):
    out = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and f"python {script} " in out.stdout, out.stdout[:500]


def test_estimate_prints_the_plan_and_loads_no_model(tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(evaluate, "run_one", lambda spec: pytest.fail("a worker was started"))
    assert evaluate.main(["--model", tiny_model_dir, "--out", str(tmp_path / "o"), "--suite", "countdown",
                          "--preset", "quickstart", "--data-dir", str(tmp_path / "data"), "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "countdown" in out and "token" in out


# ---- one reply never sinks a checkpoint (issue 28): a grading fault stays at its sample, counted and logged
DEEP = "def f(n):\n    x = []\n    for _ in range(5000):\n        x = [x]\n    return x"


def code_reply(code: str) -> str:
    return f"<think>\nok\n</think>\n```python\n{code}\n```\n"


def test_a_reply_nested_5000_deep_is_graded_without_raising(tmp_path):
    from rsft.code_grading import grade_code
    from rsft.tasks.livecodebench import utils as lcb

    tests = [{"input": "3", "output": "[[[[]]]]", "testtype": "functional"}]
    assert grade_code(code_reply(DEEP), tests, fn_name="f") is False
    right = "def f(n):\n    x = []\n    for _ in range(n):\n        x = [x]\n    return x"
    assert grade_code(code_reply(right), tests, fn_name="f") is True
    spec = tmp_path / "1.json"
    spec.write_text(json.dumps({"fn_name": "f", "tests": tests, "private": tests}))
    out = lcb.process_results({"tests_path": str(spec)}, [[code_reply(DEEP), code_reply(right)]])
    assert out["acc_strict"] == 0.5 and out["ungradeable"] == 0


def test_integer_answers_past_4300_digits_compare_exactly():
    from rsft.code_grading import grade_code

    tests = [{"input": "5000", "output": "1" + "0" * 5000, "testtype": "functional"}]
    assert grade_code(code_reply("def f(n):\n    return 10 ** n"), tests, fn_name="f") is True
    assert grade_code(code_reply("def f(n):\n    return 10 ** n + 1"), tests, fn_name="f") is False


def test_an_exception_while_grading_one_sample_is_caught_counted_and_logged(caplog):
    from rsft.tasks.common import per_sample_faults, score_samples

    def grade(r):
        if r == "bad":
            raise RecursionError("maximum recursion depth exceeded in comparison")
        return r == "right"

    with caplog.at_level("WARNING", logger="rsft.grading"):
        out = score_samples([["right", "bad", "wrong", "right"]], grade)
    assert out["acc"] == 0.5 and out["ungradeable"] == 0.25
    assert "RecursionError: maximum recursion depth" in caplog.text

    @per_sample_faults
    def process_results(doc, results):  # fails outside score_samples, e.g. reading the problem's tests file
        out = score_samples(results, grade)
        raise OSError(f"cannot read {doc['tests_path']}")

    with caplog.at_level("WARNING", logger="rsft.grading"):
        assert process_results({"tests_path": "/gone.json"}, [["right", "bad"]]) == {
            "acc": 0.0, "acc_strict": 0.0, "ungradeable": 1.0}
    assert "cannot read /gone.json" in caplog.text

    @per_sample_faults
    def two_scorings(doc, results):  # the paper's scoring's failures count as well as the strict one's
        return score_samples(results, lambda r: r == "right", paper=grade)

    assert two_scorings({}, [["right", "bad"]])["ungradeable"] == 0.5


def test_every_task_keeps_its_grading_faults_at_the_sample():
    import importlib

    tasks = sorted(p.parent.name for p in (ROOT / "rsft" / "tasks").glob("*/utils.py"))
    modules = [importlib.import_module(f"rsft.tasks.{t}.utils") for t in tasks]
    modules.append(importlib.import_module("rsft.tasks.reasoning_gym_tasks"))
    graded = [m for m in modules if hasattr(m, "process_results")]
    assert len(graded) >= 11
    unguarded = [m.__name__ for m in graded if not hasattr(m.process_results, "__wrapped__")]
    assert not unguarded, unguarded


def test_a_deeply_nested_line_forged_on_the_runner_s_channel_is_a_failure_not_a_crash():
    from rsft.code_grading import grade_code

    forge = ("import os\nline = b'[' * 100000 + b']' * 100000 + b'\\n'\nfor fd in range(1, 20):\n    try:\n"
             "        os.write(fd, line)\n    except OSError:\n        pass\nos._exit(0)")
    assert grade_code(code_reply(forge), [{"input": "", "output": "1", "testtype": "stdin"}]) is False


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_evaluation_ends_in_one_line_naming_step_and_task_and_stops_its_worker(tmp_path,
                                                                                             tiny_model_dir, how):
    from helpers import write_fixtures

    write_fixtures(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "evaluate.py", "--model", tiny_model_dir, "--out", str(tmp_path / "out"),
                             "--suite", "countdown,capitals", "--preset", "quickstart", "--data-dir",
                             str(tmp_path / "data")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,  # a session of its own, as a terminal gives a command
                            # and Ctrl-C's default action, as a terminal gives it: a test run started in the
                            # background (`pytest &`) has SIGINT ignored, which its children would inherit
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith("[1/1] step 0:"):
            break
    time.sleep(1)  # the worker is starting (importing torch and lm-eval takes seconds)
    workers = [int(pid) for pid in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
    assert len(workers) == 1
    if how == "ctrl-c":  # a terminal sends SIGINT to its whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err, err
    assert err.strip().splitlines()[-1] == ("interrupted at step 0, task countdown; rerun the same command to "
                                            "resume")
    with pytest.raises(ProcessLookupError):
        os.kill(workers[0], 0)


def test_a_task_that_crashes_keeps_the_results_of_the_tasks_finished_before_it(tmp_path, tiny_model_dir,
                                                                                 monkeypatch):
    """Each task is evaluated and written on its own, so a crash in the second (a CUDA error, an out-of-memory,
    a bug) loses that task only; the rerun then evaluates just it."""
    import lm_eval

    from rsft.catalogue import Preset
    from rsft.eval_worker import run_worker
    from rsft.specs import ModelSpec, WorkerSpec
    from rsft.task_data import ensure_local

    ensure_local(tmp_path / "data", ["countdown", "capitals"])
    spec = WorkerSpec(model=ModelSpec(base=tiny_model_dir), step=0, tasks=("countdown", "capitals"),
                      preset_name="tiny", preset=Preset(temperature=0.6, top_p=0.95, max_gen_toks=4, repeats=1,
                                                        limit=2), data_dir=str(tmp_path / "data"),
                      out_dir=str(tmp_path / "out"), batch_size=4)
    real, calls = lm_eval.simple_evaluate, []

    def crash_on_the_second(**kw):
        calls.append([t.config.task for t in kw["tasks"]])
        if len(calls) == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(**kw)

    monkeypatch.setattr(lm_eval, "simple_evaluate", crash_on_the_second)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        run_worker(spec)
    assert calls == [["rsft_countdown"], ["rsft_capitals"]]
    assert result_path(tmp_path / "out", "countdown").exists() and not result_path(tmp_path / "out", "capitals").exists()
    monkeypatch.setattr(lm_eval, "simple_evaluate", lambda **kw: calls.append(kw["tasks"]) or real(**kw))
    run_worker(spec)
    assert [t.config.task for t in calls[-1]] == ["rsft_capitals"] and result_path(tmp_path / "out", "capitals").exists()


def test_a_result_without_its_value_or_with_samples_lines_removed_is_redone_not_finished(tmp_path, capsys):
    from rsft.rundir import gen_path, generated, write_jsonl_atomic

    step = tmp_path / "eval" / "quickstart" / "step00010"
    full = {"task": "countdown", "step": 10, "value": 0.5, "n": 2, "k": 3, "preset": {}}
    rows = [{"doc_id": d, "sample": j} for d in range(2) for j in range(3)]
    write_jsonl_atomic(samples_path(step, "countdown"), rows)
    write_json_atomic(result_path(step, "countdown"), full)
    assert generated(step, "countdown")
    for damaged in ({k: v for k, v in full.items() if k != "value"}, {**full, "value": None}):
        write_json_atomic(result_path(step, "countdown"), damaged)
        assert not generated(step, "countdown")
        assert f"{result_path(step, 'countdown')} has no value; countdown is evaluated again" in capsys.readouterr().err
    write_json_atomic(result_path(step, "countdown"), full)
    write_jsonl_atomic(samples_path(step, "countdown"), rows[:4])  # two lines removed
    assert not generated(step, "countdown")
    assert (f"{samples_path(step, 'countdown')} has 4 lines, fewer than the 6 (n 2 x k 3) its result says; "
            f"countdown is evaluated again") in capsys.readouterr().err
    # a judge-scored task waiting for its judges has a null value and is finished generating
    write_jsonl_atomic(samples_path(step, "hexphi"), [{"doc_id": 0, "sample": 0}])
    write_json_atomic(gen_path(step, "hexphi"), {"task": "hexphi", "value": None, "judge": ["harm"], "n": 1, "k": 1})
    assert generated(step, "hexphi") and not capsys.readouterr().err


@pytest.mark.parametrize("code, said", [(errno.ENOSPC, "the disk holding {folder} is full"),
                                        (errno.EROFS, "{folder} is read-only; make it writable")])
def test_a_full_or_read_only_results_folder_is_one_line_naming_it_and_keeps_the_old_file(tmp_path, monkeypatch,
                                                                                          code, said):
    import rsft.rundir

    path = result_path(tmp_path / "step00010", "countdown")
    write_json_atomic(path, {"value": 0.5})

    def refuse(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(rsft.rundir.os, "replace", refuse)
    with pytest.raises(UserError) as e:
        write_json_atomic(path, {"value": 0.75})
    msg = str(e.value)
    assert msg.startswith(f"cannot write {path}: " + said.format(folder=path.parent)) and "\n" not in msg, msg
    assert json.loads(path.read_text()) == {"value": 0.5} and sorted(p.name for p in path.parent.iterdir()) == [
        "countdown.json"]  # the old result kept, no half-written copy left


def test_evaluate_py_refuses_a_results_folder_it_cannot_write_before_any_model_loads(tmp_path, tiny_model_dir,
                                                                                      monkeypatch):
    """We run as root in tests (chmod binds no one), so the folder is made unwritable by a file standing in it."""
    (tmp_path / "out").write_text("a file, not a folder")
    monkeypatch.setattr(evaluate, "run_one", lambda spec: pytest.fail("a worker was started"))
    with pytest.raises(UserError) as e:
        evaluate.main(["--model", tiny_model_dir, "--out", str(tmp_path / "out"), "--suite", "countdown",
                       "--preset", "quickstart", "--data-dir", str(tmp_path / "data")])
    assert str(e.value).startswith(f"cannot write {tmp_path / 'out'}/.write-check: a file stands where the folder "
                                   f"{tmp_path / 'out'} (or one above it) should be"), e.value


def test_a_full_rsft_cache_is_one_line_for_eval_data_and_a_warning_for_the_token_cache(tmp_path, tokenizer,
                                                                                        capsys):
    import numpy as np

    import rsft.data
    from helpers import math_cot_rows, write_jsonl
    from rsft.config import DataConfig
    from rsft.task_data import ensure_local

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    cache = tmp_path / "cache"  # $RSFT_CACHE in tests
    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "replace", full)
        with pytest.raises(UserError, match=f"the disk holding {cache / 'eval-data'}/countdown is full"):
            ensure_local(cache / "eval-data", ["countdown"])
    with pytest.MonkeyPatch.context() as m:  # the token cache: training goes on, told the data was not cached
        m.setattr(np, "savez", full)
        data = write_jsonl(tmp_path / "d.jsonl", math_cot_rows(3))
        tok = rsft.data.load_tokenized(DataConfig(path=str(data)), tokenizer, "t")
    assert len(tok.offsets) == 4 and not list((cache / "tokens").iterdir())
    assert f"warning: tokenized data not cached (cannot write {cache / 'tokens'}/" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["corrupt safetensors", "deleted"])
def test_a_checkpoint_damaged_or_deleted_after_planning_fails_its_step_in_one_line(tmp_path, tiny_model_dir, damage):
    """The worker that cannot load its model says so in one line naming the folder; evaluate.py goes on with the
    other steps and ends naming the failed one (no traceback from either process)."""
    import shutil

    from rsft.specs import ModelSpec, WorkerSpec
    from rsft.catalogue import Preset

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, ckpt)  # a whole model folder, as a full fine-tuning checkpoint is
    if damage == "deleted":
        shutil.rmtree(ckpt)
    else:
        (ckpt / "model.safetensors").write_bytes(b"\x00" * 64)
    spec = WorkerSpec(model=ModelSpec(base=str(ckpt)), step=4, tasks=("countdown",), preset_name="tiny",
                      preset=Preset(max_gen_toks=4, repeats=1, limit=2), data_dir=str(tmp_path / "data"),
                      out_dir=str(tmp_path / "out"), batch_size=2)
    from rsft.task_data import ensure_local

    ensure_local(tmp_path / "data", ["countdown"])
    (tmp_path / "spec.json").write_text(spec.to_json())
    res = subprocess.run([sys.executable, "-m", "rsft.eval_worker", str(tmp_path / "spec.json")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.stderr.strip().splitlines()[-1].startswith(f"error: cannot load {ckpt}")
    assert "restore it, or leave its step out" in res.stderr
