"""The kit's tasks are plain lm-eval tasks: the lm-eval CLI runs them with only --include_path (rsft installed by
the README's set-up, no PYTHONPATH, local data built on demand), under names that cannot replace lm-eval's own."""
import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT
from rsft.catalogue import SUITES, lm_eval_name, task_names

TASKS = ROOT / "rsft" / "tasks"


def test_no_kit_task_name_is_one_of_lm_evals_own():
    from lm_eval.tasks import TaskManager

    builtin = set(TaskManager().all_tasks)
    assert not builtin & {lm_eval_name(t) for t in task_names()}
    assert {"aime24", "ifeval", "mmlu_pro"} <= builtin  # the names the prefix keeps the kit's tasks off


def test_every_suite_is_an_lm_eval_group_of_its_tasks():
    import yaml

    for suite, tasks in SUITES.items():
        group = yaml.safe_load((TASKS / "_groups" / f"rsft_{suite}.yaml").read_text())
        names = [t["task"] if isinstance(t, dict) else t for t in group["task"]]  # a dict: the task with overrides
        assert group["group"] == f"rsft_{suite}" and names == [lm_eval_name(t) for t in tasks], suite


def test_the_quickstart_group_carries_the_presets_cap_so_lm_evals_own_cli_finishes_on_a_cpu():
    from lm_eval.tasks import TaskManager, get_task_dict

    from rsft.catalogue import PRESETS

    def leaves(d):
        return {k: v for key, val in d.items() for k, v in (leaves(val) if isinstance(val, dict) else {key: val}).items()}

    p, tm = PRESETS["quickstart"], TaskManager(include_path=str(TASKS))
    tasks = leaves(get_task_dict(["rsft_quickstart"], tm))
    assert sorted(tasks) == sorted(lm_eval_name(t) for t in SUITES["quickstart"])
    for task in tasks.values():
        g = task.config.generation_kwargs
        cap = p.max_gen_toks_for(task.config.task.removeprefix("rsft_"), None)  # capitals: the preset's 64
        assert task.config.repeats == p.repeats and g["max_gen_toks"] == cap, task.config.task
        assert (g["temperature"], g["top_p"], g["until"]) == (p.temperature, p.top_p, [])
    # by name, as evaluate.py loads it, a task keeps the reasoning template's own settings (the paper's)
    alone = get_task_dict(["rsft_countdown"], tm)["rsft_countdown"].config
    assert alone.repeats == 3 and alone.generation_kwargs["max_gen_toks"] == 32768


def test_the_lm_eval_cli_runs_a_kit_task_with_only_include_path(tmp_path, tiny_model_dir):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["RSFT_CACHE"] = str(tmp_path / "cache")  # no data prepared there: countdown's is built on demand
    out = subprocess.run([sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                          f"pretrained={tiny_model_dir}", "--include_path", str(TASKS), "--tasks",
                          "rsft_countdown", "--limit", "2", "--apply_chat_template", "--gen_kwargs",
                          "max_gen_toks=8", "--output_path", str(tmp_path / "out"), "--log_samples"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    assert "acc,all" in results["results"]["rsft_countdown"]
    assert (tmp_path / "cache" / "eval-data" / "countdown" / "test.jsonl").exists()
    samples = [json.loads(line) for line in next((tmp_path / "out").rglob("samples_rsft_countdown*.jsonl")).open()]
    assert len(samples) == 2 and {"doc", "target"} <= set(samples[0])


def test_a_hub_task_without_data_names_the_download_and_lm_evals_metadata(tmp_path):
    code = ("from rsft.tasks.common import load_local\n"
            "from rsft.errors import UserError\n"
            "try:\n    load_local('math500', data_dir=%r)\nexcept UserError as e:\n    print(e)\n" % str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert "--download-data" in out.stdout and "--metadata" in out.stdout, out.stdout + out.stderr
