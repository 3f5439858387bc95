"""The embedded default as a user runs it: what it trains on, what it is evaluated on, how big each task is, and the
CPU precision it picks. (Its times and scores are measured in bench/bench_quickstart.sh, not asserted here.)"""
import json
from types import SimpleNamespace

import pytest

from helpers import ROOT
from rsft.catalogue import PRESETS, SUITES, task_group
from rsft.config import load_recipe
from rsft.countdown import make_dataset
from rsft.eval_worker import apply_preset, question_limits
from rsft.schedule import make_plan
from rsft.task_data import ensure_local
from rsft.tasks import datafile
from rsft.trainer import resolve_autocast

QUICKSTART = ROOT / "recipes/quickstart.yaml"


def _key(numbers, target):
    return tuple(sorted(numbers)), target


def test_the_quickstart_trains_every_row_once_on_3_number_puzzles_and_saves_3_checkpoints():
    r = load_recipe(QUICKSTART)
    rows = make_dataset(r.data.num_examples, seed=r.data.seed)
    plan = make_plan(r.train, r.checkpoints, len(rows))
    assert plan.total_steps == 70 and plan.dropped_rows_per_epoch == 0 and list(plan.save_steps) == [10, 35, 70]
    assert all(len(row["answer"]["numbers"]) == 3 and 1 <= row["answer"]["target"] <= 100 for row in rows)
    assert r.train.autocast == "auto" and r.lora.r == 16 and r.lora.lora_alpha == 32


def test_the_long_variant_differs_only_in_the_length_of_training():
    short, long = load_recipe(QUICKSTART), load_recipe(ROOT / "recipes/quickstart-long.yaml")
    assert (long.model, long.lora, long.data, long.eval) == (short.model, short.lora, short.data, short.eval)
    assert long.train.num_train_epochs > short.train.num_train_epochs


def test_held_out_countdown_is_disjoint_from_the_training_rows_and_big_enough(tmp_path):
    r = load_recipe(QUICKSTART)
    train_keys = {_key(row["answer"]["numbers"], row["answer"]["target"])
                  for row in make_dataset(r.data.num_examples, seed=r.data.seed)}
    ensure_local(tmp_path, ["countdown"])
    test = [json.loads(line) for line in datafile.test_file(tmp_path, "countdown").read_text().splitlines()]
    n = PRESETS["quickstart"].in_domain_limit
    assert n >= 100 and len(test) >= n
    assert not train_keys & {_key(row["numbers"], row["target"]) for row in test}
    assert all(len(row["numbers"]) == 3 and 1 <= row["target"] <= 100 for row in test)


def test_the_quickstart_suite_has_countdown_in_domain_and_two_out_of_domain_tasks_of_50(tmp_path):
    tasks = SUITES["quickstart"]
    assert [t for t in tasks if task_group(t) == "in_domain"] == ["countdown"]
    ood = [t for t in tasks if task_group(t) == "ood"]
    assert len(ood) >= 2 and PRESETS["quickstart"].limit >= 50
    ensure_local(tmp_path, ood)
    for t in ood:
        rows = datafile.test_file(tmp_path, t).read_text().splitlines()
        assert len(rows) >= PRESETS["quickstart"].limit, t
        assert len(set(rows)) == len(rows), t  # no question twice


def test_word_problems_are_seeded_one_step_sums_and_differences_with_right_answers():
    import re

    from rsft.tasks.word_problems.data import make_rows

    rows = make_rows()
    assert rows == make_rows() and len({r["question"] for r in rows}) == len(rows)
    for r in rows:
        a, b = map(int, re.findall(r"\d+", r["question"]))
        subtract = any(w in r["question"] for w in ("gives away", "lost"))
        assert int(r["answer"]) == (a - b if subtract else a + b) >= 0, r
        assert max(a, b, int(r["answer"])) <= 20 and r["question"].endswith("?")
    subtractions = sum(any(w in r["question"] for w in ("gives away", "lost")) for r in rows)
    assert 0.3 < subtractions / len(rows) < 0.7  # both operations, about half each


def test_capitals_are_60_countries_each_with_its_own_capital():
    from rsft.tasks.capitals.data import make_rows

    rows = make_rows()
    assert len(rows) == 60 and len({r["country"] for r in rows}) == 60 and len({r["answer"] for r in rows}) == 60
    assert all(r["answer"] in r["accepted"] for r in rows)


@pytest.mark.parametrize("reply, right", [
    ("The capital of France is Paris.", True),
    ("\\boxed{paris}", True),  # any case
    ("It is Paris, or maybe London.", False),  # a list of capitals is not an answer
    ("Parisian food is good.", False),  # a whole word only
    ("<think>Paris is", False),  # cut-off thinking answers nothing
    ("<think>hmm</think> Paris", True),
    ("I think it is Lyon.", False),
])
def test_a_capital_counts_only_when_the_reply_names_it_and_no_other(reply, right):
    from rsft.tasks.capitals.utils import grade_capital

    assert grade_capital(reply, "Paris") is right


def test_accepted_spellings_count_for_their_capital():
    from rsft.tasks.capitals.utils import grade_capital

    assert grade_capital("The capital is Kiev.", "Kyiv") and grade_capital("\\boxed{Bogotá}", "Bogota")


def _task(name, group, docs):
    return SimpleNamespace(config=SimpleNamespace(task=f"rsft_{name}", metadata={"group": group}),
                           eval_docs=list(range(docs)))


def test_in_domain_tasks_take_their_own_number_of_questions():
    p = PRESETS["quickstart"]
    tasks = {t: _task(t, g, n) for t, g, n in (("countdown", "in_domain", 200), ("word_problems", "ood", 200),
                                               ("tiny", "ood", 7))}
    samples = question_limits(tasks, p)["samples"]  # keyed by lm-eval's names, which simple_evaluate looks up
    assert {k: len(v) for k, v in samples.items()} == {"rsft_countdown": 100, "rsft_word_problems": 50, "rsft_tiny": 7}
    assert samples["rsft_countdown"] == list(range(100))  # the first N, as lm-eval's limit takes them
    assert question_limits(tasks, PRESETS["consumer"]) == {"limit": 200}


def test_the_grading_bar_counts_each_tasks_own_questions(monkeypatch):
    import tqdm

    from rsft import eval_worker

    totals = {}
    monkeypatch.setattr(tqdm, "tqdm", lambda total, desc, **kw: totals.setdefault(desc, total) and None)
    p = PRESETS["quickstart"]
    for name, group in (("countdown", "in_domain"), ("capitals", "ood")):
        task = _task(name, group, 200)
        task.process_results = lambda doc, results: {}
        eval_worker._grading_progress(name, task, p)
    assert totals == {"grading countdown": 100, "grading capitals": 50}  # before: 50 for both, ETA off by 2x


def test_the_quickstart_preset_samples_as_the_paper_once_per_question():
    task = SimpleNamespace(config=SimpleNamespace(task="rsft_countdown", repeats=3, generation_kwargs={
        "do_sample": True, "temperature": 1.0, "top_p": 1.0, "max_gen_toks": 32768}))
    apply_preset(task, PRESETS["quickstart"])
    gen = task.config.generation_kwargs
    assert gen["do_sample"] is True and gen["temperature"] == 0.6 and gen["top_p"] == 0.95
    assert gen["max_gen_toks"] == 192 and task.config.repeats == 1


def test_the_quickstart_preset_caps_capitals_lower_and_ends_looping_replies():
    """The preset's two time rules (rsft/catalogue.py): capitals get 64 new tokens, the other tasks 192, and a
    reply that only repeats itself ends."""
    p = PRESETS["quickstart"]
    caps = {}
    for name in ("countdown", "word_problems", "capitals"):
        task = SimpleNamespace(config=SimpleNamespace(task=f"rsft_{name}", repeats=3, generation_kwargs={
            "do_sample": True, "temperature": 0.6, "top_p": 0.95, "max_gen_toks": 32768}))
        apply_preset(task, p)
        caps[name] = task.config.generation_kwargs["max_gen_toks"]
    assert caps == {"countdown": 192, "word_problems": 192, "capitals": 64}
    assert p.end_repeats and not PRESETS["paper"].end_repeats and not PRESETS["paper"].task_max_gen_toks
    assert p.max_gen_toks_for("capitals", 32) == 32  # a task's own lower cap still holds


def test_the_quickstart_token_cap_holds_every_training_response(tokenizer):
    """A trained model may need as many tokens as the longest trace it learnt from: the cap must not cut that."""
    data = load_recipe(QUICKSTART).data
    longest = max(len(tokenizer(r["response"], add_special_tokens=False)["input_ids"]) + 1  # + EOS
                  for r in make_dataset(data.num_examples, seed=data.seed))
    assert longest <= PRESETS["quickstart"].max_gen_toks < longest + 32  # and not far above it: time


def test_autocast_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch):
    import rsft.models

    monkeypatch.setattr(rsft.models, "cpu_has_native_bf16", lambda: True)
    assert resolve_autocast("auto", cuda=False)[0] is True
    assert resolve_autocast("auto", cuda=True)[0] is False  # a GPU: model.dtype sets the precision
    assert resolve_autocast("off", cuda=False)[0] is False
    monkeypatch.setattr(rsft.models, "cpu_has_native_bf16", lambda: False)
    on, why = resolve_autocast("auto", cuda=False)
    assert on is False and "no native bfloat16" in why
    assert resolve_autocast("bfloat16", cuda=False)[0] is True  # asked for: honoured (emulated, slower)


def test_rsft_cpu_float32_runs_a_bf16_cpu_as_one_without_bf16(monkeypatch):
    """How bench/bench_quickstart.sh measures the float32 class (most laptops) on a CPU with native bfloat16."""
    import evaluate
    import rsft.models

    monkeypatch.setattr(rsft.models, "Path", lambda _: type("F", (), {"read_text": lambda self: "avx512_bf16"})())
    assert rsft.models.cpu_has_native_bf16() and evaluate.eval_dtype("cpu")[0] == "bfloat16"
    monkeypatch.setenv(rsft.models.FLOAT32_ENV, "1")
    assert not rsft.models.cpu_has_native_bf16()
    assert resolve_autocast("auto", cuda=False)[0] is False and evaluate.eval_dtype("cpu")[0] == "auto"


def test_a_mistyped_autocast_value_fails_with_the_choices(tmp_path):
    from rsft.errors import UserError

    with pytest.raises(UserError, match="train.autocast: 'bf16' is not one of off, auto, bfloat16"):
        load_recipe(QUICKSTART, ["train.autocast=bf16"])
