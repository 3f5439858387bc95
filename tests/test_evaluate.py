"""Evaluation: every task loads in lm-eval and runs end to end; results are complete, resumable and readable."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import evaluate
import train
from helpers import FIXTURES, ROOT, make_recipe, write_fixtures
from rsft.errors import UserError
from rsft.short_answer_grading import grade_reasoning_gym
from rsft.catalogue import SUITES, lm_eval_name, task_names
from rsft.tasks.common import answer_kind
from rsft.rundir import write_jsonl_atomic
from rsft.task_data import is_local
from rsft.tasks.reasoning_gym_tasks import reasoning_gym_rows
from rsft.tasks import TASKS_DIR

RULE_GRADED = [t for t in task_names() if t not in SUITES["judged"]]  # the judged ones: tests/test_judges.py


def test_every_task_folder_has_a_fixture_and_a_suite():
    assert sorted(FIXTURES) == task_names()
    assert set().union(*SUITES.values()) == set(task_names())


def test_every_task_yaml_loads_through_include_path(tmp_path):
    from lm_eval.tasks import TaskManager, get_task_dict

    write_fixtures(tmp_path)
    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_dir": str(tmp_path)})
    tasks = {name.removeprefix("rsft_"): task for name, task in get_task_dict([lm_eval_name(t) for t in task_names()],
                                                                             tm).items()}
    assert sorted(tasks) == task_names()
    for name, task in tasks.items():
        docs = list(task.test_docs())
        # a locally made task's file is its generator's (the fixture, a prefix of it, is rewritten); the rest: as put
        assert len(docs) == 2 or (is_local(name) and docs[:2] == FIXTURES[name]), name
        text = task.doc_to_text(docs[0])
        if answer_kind(task.config.process_results) in ("boxed", "math") and not task.config.metadata.get("judge"):
            assert "\\boxed{}" in text  # every prompt graded on a boxed answer asks for one
        assert task.config.generation_kwargs["until"] == []  # no stop string can cut thinking
        assert task.config.metadata["version"] >= 1


def test_gpqa_option_order_is_deterministic_and_tracks_the_gold_letter():
    from rsft.tasks.gpqa_diamond import utils  # noqa: F401  (importable as a module too)

    doc = FIXTURES["gpqa_diamond"][0]
    out = subprocess.run([sys.executable, "-c", "from rsft.tasks.gpqa_diamond.utils import options; import json,sys;"
                          f"print(json.dumps(options({doc!r})))"], capture_output=True, text=True, cwd=ROOT)
    opts, letter = json.loads(out.stdout)
    assert [opts, letter] == list(utils.options(doc))  # the same in another process (no salted hash())
    assert opts["ABCD".index(letter)] == "Neon"


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, tiny_model_dir):
    """A tiny run with checkpoints at steps 2 and 4, evaluated on every task (base + 2 checkpoints)."""
    tmp = tmp_path_factory.mktemp("evalrun")
    data = tmp / "data"
    write_fixtures(data)
    recipe = make_recipe(tmp, tiny_model_dir, extra="eval:\n  suite: " + ",".join(RULE_GRADED) + "\n")
    train.main([str(recipe), "train.num_train_epochs=1", "checkpoints.steps=[]"])
    run = tmp / "run"
    # fast settings through a preset defined for the test: 4 new tokens, 2 samples per question
    import rsft.catalogue as ev

    with pytest.MonkeyPatch.context() as mp:  # the preset lives as long as the module's tests use it
        mp.setitem(ev.PRESETS, "test", ev.Preset(max_gen_toks=4, repeats=2, limit=2))
        assert evaluate.main([str(run), "--data-dir", str(data), "--preset", "test", "--steps", "0,4"]) == 0
        yield run, data


def test_results_cover_every_task_and_checkpoint_with_their_settings(evaluated_run):
    run, _ = evaluated_run
    for step in ("step00000", "step00004"):
        for name in RULE_GRADED:
            r = json.loads((run / "eval/test" / step / f"{name}.json").read_text())
            assert r["n"] == 2 and r["k"] == 2 and r["preset"]["max_gen_toks"] == 4
            assert 0.0 <= r["value"] <= 1.0 and r["grader_version"] >= 1 and r["lm_eval_version"]
            assert r["truncated_rate"] is not None and r["mean_response_tokens"] > 0
            samples = [json.loads(l) for l in (run / "eval/test" / step / f"{name}.samples.jsonl").open()]
            assert len(samples) == 4 and {"response", "extracted", "tokens", "truncated"} <= set(samples[0])
    assert json.loads((run / "eval/test/step00004/math500.json").read_text())["adapter"].endswith("step00004")


def test_evaluation_refreshes_the_model_card_of_each_evaluated_checkpoint(evaluated_run):
    run, _ = evaluated_run
    card = (run / "checkpoints/step00004/README.md").read_text()
    assert "Not evaluated yet" not in card and "| countdown | in-domain | test | " in card
    assert "Not evaluated yet" in (run / "checkpoints/step00002/README.md").read_text()  # --steps 0,4 only


def test_lm_evals_own_results_file_names_the_adapter_the_limit_and_the_generation_kwargs(evaluated_run):
    run, _ = evaluated_run
    config = json.loads((run / "eval/test/step00004/lm_eval/results_countdown.json").read_text())["config"]
    assert config["model"] == "hf" and f"peft={run / 'checkpoints/step00004'}" in config["model_args"]
    assert config["limit"] == 2 and config["gen_kwargs"]["max_gen_toks"] == 4
    base = json.loads((run / "eval/test/step00000/lm_eval/results_countdown.json").read_text())["config"]
    assert "peft=" not in base["model_args"] and base["model_args"].startswith("pretrained=")


def test_a_rerun_skips_finished_pairs(evaluated_run, monkeypatch):
    run, data = evaluated_run
    calls = []
    monkeypatch.setattr(evaluate, "run_one", lambda spec: calls.append(spec) or True)
    evaluate.main([str(run), "--data-dir", str(data), "--preset", "test", "--steps", "0,4"])
    assert calls == []  # every (checkpoint, task) pair is finished: no model is loaded again
    (run / "eval/test/step00004/knights_knaves.json").unlink()  # as if killed before knights_knaves finished
    evaluate.main([str(run), "--data-dir", str(data), "--preset", "test", "--steps", "0,2,4"])
    assert [(c.step, list(c.tasks)) for c in calls] == [(2, RULE_GRADED), (4, ["knights_knaves"])]


def test_limit_results_go_to_a_folder_of_their_own_and_never_block_the_preset(evaluated_run, monkeypatch):
    run, data = evaluated_run
    calls = []
    monkeypatch.setattr(evaluate, "run_one", lambda spec: calls.append(spec) or True)
    # the preset's results (limit 2) are in eval/test/: a smoke test at limit 1 neither meets nor refuses them
    evaluate.main([str(run), "--data-dir", str(data), "--preset", "test", "--steps", "4", "--limit", "1"])
    assert {c.out_dir for c in calls} == {str(run / "eval/test-limit1/step00004")}
    assert {c.preset.limit for c in calls} == {1}
    calls.clear()  # and the preset's evaluation goes on in its own folder, unblocked
    assert evaluate.main([str(run), "--data-dir", str(data), "--preset", "test", "--steps", "4"]) == 0
    assert {c.out_dir for c in calls} <= {str(run / "eval/test/step00004")}


def test_results_of_a_changed_preset_are_refused_not_reused(evaluated_run, monkeypatch):
    import rsft.catalogue as ev

    run, data = evaluated_run
    monkeypatch.setitem(ev.PRESETS, "test", ev.Preset(max_gen_toks=8, repeats=2, limit=2))
    monkeypatch.setattr(evaluate, "run_one", lambda spec: pytest.fail("evaluated over results of other settings"))
    with pytest.raises(UserError, match=r"step00000/\w+\.json was made with other settings of this preset "
                                        r"\(max_gen_toks 4 -> 8\); move that folder away"):
        evaluate.main([str(run), "--data-dir", str(data), "--preset", "test", "--steps", "0"])


def test_results_made_before_a_preset_setting_existed_are_reused(evaluated_run, monkeypatch):
    run, data = evaluated_run
    for path in (run / "eval/test/step00000").glob("*.json"):
        res = json.loads(path.read_text())
        if "preset" in res:  # as written before presets had in_domain_limit
            assert res["preset"].pop("in_domain_limit") is None
            path.write_text(json.dumps(res))
    calls = []
    monkeypatch.setattr(evaluate, "run_one", lambda spec: calls.append(spec) or True)
    evaluate.main([str(run), "--data-dir", str(data), "--preset", "test", "--steps", "0"])
    assert calls == []


def test_a_full_fine_tuning_run_is_evaluated_checkpoint_by_checkpoint(tmp_path, tiny_model_dir, monkeypatch):
    """model.finetune: full saves whole models, no adapter: each checkpoint is loaded as the model itself."""
    data = tmp_path / "data"
    write_fixtures(data)
    recipe = make_recipe(tmp_path, tiny_model_dir, extra="eval:\n  suite: countdown\n")
    train.main([str(recipe), "model.finetune=full", "train.learning_rate=1e-3", "train.num_train_epochs=1",
                "checkpoints.steps=[]"])
    import rsft.catalogue as ev

    monkeypatch.setitem(ev.PRESETS, "test", ev.Preset(max_gen_toks=4, repeats=2, limit=2))
    assert evaluate.main([str(tmp_path / "run"), "--data-dir", str(data), "--preset", "test", "--steps", "0,4"]) == 0
    r0, r4 = (json.loads((tmp_path / f"run/eval/test/step0000{s}/countdown.json").read_text()) for s in (0, 4))
    assert r0["model"] == str(Path(tiny_model_dir).resolve()) and r0["adapter"] is None
    assert r4["model"] == str(tmp_path / "run/checkpoints/step00004") and r4["adapter"] is None and r4["n"] == 2
    (tmp_path / "run/checkpoints/step00004/config.json").unlink()
    with pytest.raises(UserError, match="step00004 holds neither a LoRA adapter .* nor a model"):
        evaluate.main([str(tmp_path / "run"), "--data-dir", str(data), "--preset", "test", "--steps", "4"])


def test_missing_steps_tasks_and_run_folders_are_clear_errors(evaluated_run, tmp_path):
    run, data = evaluated_run
    with pytest.raises(UserError, match=r"no checkpoint for steps \[3\]; it has \[0, 2, 4\]"):
        evaluate.main([str(run), "--steps", "0,3", "--data-dir", str(data)])
    with pytest.raises(UserError, match="unknown suite or task nope; suites: .*tasks: aime24"):
        evaluate.main([str(run), "--suite", "nope", "--data-dir", str(data)])
    with pytest.raises(UserError, match="is not a run folder"):
        evaluate.main([str(tmp_path), "--data-dir", str(data)])


def test_missing_offline_data_names_the_folder_to_fill(tmp_path):
    from rsft.tasks.common import load_local

    with pytest.raises(UserError, match="math500/test.jsonl is missing; fill it once online"):
        load_local("math500", data_dir=str(tmp_path))


def test_ifeval_halueval_livecodebench_score_a_right_reply_1_and_a_wrong_one_0(tmp_path):
    """Through the task definitions as lm-eval loads them: k=2 samples, one right and one wrong, give acc 0.5."""
    from lm_eval.tasks import TaskManager, get_task_dict

    write_fixtures(tmp_path)
    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_dir": str(tmp_path)})
    tasks = {n.removeprefix("rsft_"): t for n, t in get_task_dict(["rsft_ifeval", "rsft_halueval", "rsft_livecodebench"],
                                                                    tm).items()}
    think = "<think>\nHmm, yes, no, commas, code.\n</think>\n\n"
    cases = {
        "ifeval": (0, "Rain falls softly. It sings on the roof.", "Rain, rain, go away."),
        "halueval": (0, "Yes", "No, it is fine."),
        "livecodebench": (1, "```python\nclass Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n```",
                          "```python\nclass Solution:\n    def twoSum(self, nums, target):\n        return [1, 0]\n```"),
    }
    for name, (i, right, wrong) in cases.items():
        doc = list(tasks[name].test_docs())[i]
        out = tasks[name].process_results(doc, [[think + right, think + wrong]])
        assert out["acc"] == 0.5 and out["truncated"] == 0 and out["no_answer"] == 0, (name, out)
        cut = tasks[name].process_results(doc, [["<think>\n" + right, think]])  # cut off; no answer after thinking
        assert cut["acc_strict"] == 0 and cut["truncated"] == 0.5 and cut["no_answer"] == 0.5, (name, cut)
        assert cut["acc"] == 0.5, (name, cut)  # the paper's scoring reads the cut-off reply's right answer
    doc = list(tasks["ifeval"].test_docs())[0]
    out = tasks["ifeval"].process_results(doc, [[think + "One sentence, with a comma.", think + "Two. Sentences."]])
    assert out["inst_level_strict_acc"] == [False, False, True, True] and out["prompt_level_loose_acc"] == 0.5


def test_quickstart_tasks_score_a_right_reply_1_and_a_wrong_one_0(tmp_path):
    """HumanEval (run in the sandbox) and the reasoning-gym tasks (their own scorer, full credit only), through the
    task definitions: k=2 samples, one right and one wrong, give acc 0.5."""
    from lm_eval.tasks import TaskManager, get_task_dict

    write_fixtures(tmp_path)
    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_dir": str(tmp_path)})
    tasks = {n.removeprefix("rsft_"): t for n, t in get_task_dict(["rsft_humaneval", "rsft_basic_arithmetic",
                                                                     "rsft_knights_knaves"], tm).items()}
    think = "<think>\nLet me see.\n</think>\n\n"
    right_he = ("```python\ndef has_close_elements(numbers, threshold):\n    return any(abs(a - b) < threshold "
                "for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```")  # HumanEval/0, the first fixture
    gold = FIXTURES["basic_arithmetic"][0]["answer"]
    cases = {  # the wrong reasoning-gym answers get partial credit from its scorer, and count as wrong
        "humaneval": (right_he, right_he.replace("< threshold", "> threshold")),
        "basic_arithmetic": (f"\\boxed{{ {gold} }}", f"\\boxed{{x = {gold}}}"),  # the gold inside a longer answer
        "knights_knaves": ("\\boxed{Zoey is a fool, and Riley is a sage}",
                           "\\boxed{Zoey is a sage, and Riley is a sage}"),  # one role of two right
    }
    for name, (right, wrong) in cases.items():
        doc = list(tasks[name].test_docs())[0]
        out = tasks[name].process_results(doc, [[think + right, think + wrong]])
        assert out["acc"] == 0.5 and out["truncated"] == 0 and out["no_answer"] == 0, (name, out)
        cut = tasks[name].process_results(doc, [["<think>\n" + right, think]])  # cut off; no answer after thinking
        assert cut["acc"] == 0 and cut["truncated"] == 0.5 and cut["no_answer"] == 0.5, (name, cut)
    from reasoning_gym import get_score_answer_fn

    entry = FIXTURES["knights_knaves"][0]
    assert 0 < get_score_answer_fn("knights_knaves")("Zoey is a sage, and Riley is a sage", entry) < 1
    with pytest.raises(ValueError, match="number_sorting: its score_answer has not been read"):
        grade_reasoning_gym(think + "\\boxed{1}", {**entry, "dataset": "number_sorting"})  # some eval() answers


def test_reasoning_gym_data_is_the_same_in_every_run():
    """Generated with a fixed seed: the same rows in another process (no salted hash()), and the first puzzles of
    reasoning-gym 0.1.25 (a new release that changes them changes this test, and the results' comparability)."""
    code = ("import json; from rsft.tasks.reasoning_gym_tasks import reasoning_gym_rows as r; "
            "print(json.dumps([r('basic_arithmetic', 20), r('knights_knaves', 20)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    arith, knights = json.loads(out.stdout)
    assert arith == reasoning_gym_rows("basic_arithmetic", 20) and knights == reasoning_gym_rows("knights_knaves", 20)
    assert (arith[0]["question"], arith[0]["answer"]) == ("Calculate -5 * -6.", "30")
    assert knights[0]["answer"] == "Zoey is a fool, and Riley is a sage."
    assert all("/" not in r["question"] for r in reasoning_gym_rows("basic_arithmetic", 200))  # floor division out


def test_ifeval_without_the_sentence_tokenizer_fails_before_generating(tmp_path, monkeypatch):
    import nltk

    from rsft.tasks.ifeval.utils import load

    monkeypatch.setattr(nltk.data, "path", [])  # as on a machine that never downloaded punkt_tab
    write_jsonl_atomic(tmp_path / "ifeval" / "test.jsonl", FIXTURES["ifeval"])
    with pytest.raises(UserError, match="number_sentences need nltk's punkt_tab.*--download-data"):
        load(data_dir=str(tmp_path))


def test_livecodebench_private_tests_are_read_without_unpickling(tmp_path):
    import base64
    import pickle
    import zlib

    from rsft.tasks.livecodebench.data import decode_private_tests

    tests = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    encode = lambda obj: base64.b64encode(zlib.compress(pickle.dumps(obj))).decode()  # LiveCodeBench's encoding
    assert decode_private_tests(encode(json.dumps(tests))) == tests
    assert decode_private_tests(json.dumps(tests)) == tests  # some rows hold plain JSON

    class Exploit:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with pytest.raises(ValueError, match="opcode .* refused"):
        decode_private_tests(encode(Exploit()))
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(ValueError, match="more than 1000 bytes"):  # a zlib bomb stops at the cap
        decode_private_tests(encode("x" * 10_000), max_bytes=1000)


def test_livecodebench_without_its_tests_files_fails_before_generating(tmp_path):
    from rsft.tasks.livecodebench.utils import load

    write_jsonl_atomic(tmp_path / "livecodebench" / "test.jsonl", FIXTURES["livecodebench"])
    with pytest.raises(UserError, match="2 tests files missing .*--download-data"):
        load(data_dir=str(tmp_path))
