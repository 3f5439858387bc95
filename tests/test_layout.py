"""The evaluation side's contracts: each task's group and data come from its folder, the hand-offs to the worker are
typed and validated before a model loads, and the run folder never counts a half-written file as finished."""
import json

import pytest

from rsft.catalogue import GROUPS, SUITES, Preset, task_group, task_metadata, task_names
from rsft.errors import UserError
from rsft.rundir import (at_step, checkpoint_dir, checkpoint_dirs, eval_dir, generated, record_skipped, result_path,
                         samples_path, skipped_path, step_results, write_json_atomic, write_jsonl_atomic)
from rsft.specs import JudgeSpec, ModelSpec, WorkerSpec
from rsft.task_data import ensure_local, is_local, missing


def test_every_task_names_its_group_and_the_paper_groups_hold():
    assert {task_group(t) for t in task_names()} <= set(GROUPS)
    assert {t for t in task_names() if task_group(t) == "in_domain"} == {"math500", "aime24", "countdown"}
    assert {t for t in task_names() if task_group(t) == "general"} == {"ifeval", "halueval", "truthfulqa_gen",
                                                                      "alpacaeval"}
    assert all(task_group(t) == "safety" for t in SUITES["safety"])


def test_a_task_yaml_without_a_group_is_refused(tmp_path, monkeypatch):
    import rsft.catalogue as catalogue

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "x.yaml").write_text("task: x\ncustom_dataset: !function utils.load\nmetadata:\n  version: 1\n")
    monkeypatch.setattr(catalogue, "TASKS_DIR", tmp_path)
    task_metadata.cache_clear()
    with pytest.raises(UserError, match=r"x.yaml: metadata.group must be one of in_domain, ood"):
        task_group("x")
    task_metadata.cache_clear()


def spec(**kw):
    base = dict(model=ModelSpec(base="m"), step=0, tasks=("math500",), preset_name="paper", preset=Preset(),
                data_dir="d", out_dir="o")
    return WorkerSpec(**{**base, **kw})


def test_worker_specs_are_validated_in_the_parent_and_survive_the_round_trip():
    s = spec(preset=Preset(max_gen_toks=7, limit=3), model=ModelSpec(base="m", adapter="a", lora_rank=16))
    back = WorkerSpec.from_json(s.to_json())
    assert back == s and isinstance(back.preset, Preset) and back.preset.max_gen_toks == 7
    assert back.model.tokenizer == "a" and spec().model.tokenizer == "m"
    for bad, match in [({"backend": "tgi"}, "backend must be one of"), ({"batch_size": 0}, "batch size"),
                       ({"tasks": ("nope",)}, "unknown tasks"), ({"tasks": ()}, "no tasks"),
                       ({"device": "tpu"}, "device must be")]:
        with pytest.raises(UserError, match=match):
            spec(**bad)
    with pytest.raises(UserError, match="no judge endpoint"):
        JudgeSpec(out_dirs=("o",), tasks=("hexphi",), endpoint="")


def test_only_complete_checkpoints_are_listed(tmp_path):
    for step in (10, 20):
        checkpoint_dir(tmp_path, step).mkdir(parents=True)
        (checkpoint_dir(tmp_path, step) / "meta.json").write_text(json.dumps({"step": step}))
    half = tmp_path / "checkpoints" / "step00030.tmp"  # a kill during the save: complete meta, no rename yet
    half.mkdir()
    (half / "meta.json").write_text(json.dumps({"step": 30}))
    (tmp_path / "checkpoints" / "step00040").mkdir()  # no meta.json
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step00010", "step00020"]


def test_a_steps_results_are_its_finished_task_files_without_the_limit_smoke_tests(tmp_path):
    """What the model card shows for a checkpoint: every preset's TASK.json of that step, the base's beside it."""
    for preset, name in [("paper", "math500.json"), ("paper", "hexphi.gen.json"), ("paper", "skipped.json"),
                         ("greedy", "aime24.json"), ("paper-limit5", "math500.json")]:
        write_json_atomic(eval_dir(tmp_path, preset, 40) / name, {})
    write_json_atomic(eval_dir(tmp_path, "paper", 80) / "math500.json", {})
    found = step_results(tmp_path, 40)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["eval/greedy/step00040/aime24.json",
                                                                   "eval/paper/step00040/math500.json"]
    assert at_step(found[1], 0) == tmp_path / "eval/paper/step00000/math500.json"


def test_a_cut_short_result_or_samples_file_is_redone_not_skipped(tmp_path, capsys):
    write_json_atomic(result_path(tmp_path, "math500"), {"preset": {}, "value": 0.5})
    write_jsonl_atomic(samples_path(tmp_path, "math500"), [{"doc_id": 0}])
    assert generated(tmp_path, "math500")
    samples_path(tmp_path, "math500").write_text('{"doc_id": 0}\n{"doc_')  # killed mid-line
    assert not generated(tmp_path, "math500")
    write_jsonl_atomic(samples_path(tmp_path, "math500"), [{"doc_id": 0}])
    result_path(tmp_path, "math500").write_text("")  # emptied
    assert not generated(tmp_path, "math500")
    assert "math500.json is missing or unreadable" in capsys.readouterr().err


def test_a_task_without_data_is_named_with_the_way_to_get_it(tmp_path):
    assert is_local("countdown") and not is_local("gpqa_diamond")
    ensure_local(tmp_path, ["countdown", "gpqa_diamond"])
    why = missing(tmp_path, ["countdown", "gpqa_diamond"])
    assert list(why) == ["gpqa_diamond"] and "--download-data" in why["gpqa_diamond"] and "HF_TOKEN" in why[
        "gpqa_diamond"]
    record_skipped(tmp_path, why)
    assert json.loads(skipped_path(tmp_path).read_text()) == why
    record_skipped(tmp_path, {}, done="gpqa_diamond")  # evaluated later: taken off the list
    assert json.loads(skipped_path(tmp_path).read_text()) == {}


def test_locally_made_data_written_by_another_version_of_the_kit_is_rewritten(tmp_path, capsys):
    from rsft.tasks.common import load_local
    from rsft.tasks.datafile import test_file

    ensure_local(tmp_path, ["countdown"])
    fresh = test_file(tmp_path, "countdown").read_text()
    stale = '{"prompt": "Using the numbers [3, 45, 8, 46] ...", "numbers": [3, 45, 8, 46], "target": 80}\n'
    test_file(tmp_path, "countdown").write_text(stale)  # the held-out set of an older generator
    capsys.readouterr()
    ensure_local(tmp_path, ["countdown"])
    assert test_file(tmp_path, "countdown").read_text() == fresh
    assert "differs from what this version of the kit generates; rewritten" in capsys.readouterr().out
    ensure_local(tmp_path, ["countdown"])  # the same rows: left alone, nothing said
    assert capsys.readouterr().out == ""
    test_file(tmp_path, "countdown").write_text(stale)
    assert load_local("countdown", data_dir=str(tmp_path))["test"][0]["numbers"] != [3, 45, 8, 46]  # lm-eval's way in
