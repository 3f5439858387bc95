"""Countdown procedure metrics: arithmetic steps checked, "reaches the target" claims checked, on written traces."""
import random

import pytest

from rsft.behaviour import Procedure, arithmetic_steps, countdown_procedure, reasoning_text
from rsft.countdown import make_dataset, prompt_for, write_trace


def _one(response: str, target: int) -> Procedure:
    p = Procedure()
    p.add(response, target)
    return p


def test_a_verified_trace_has_every_step_right_and_its_one_claim_true():
    numbers, target = [13, 14, 2], 91
    response, _ = write_trace(numbers, target, random.Random(0))
    p = _one(response, target)
    assert p.steps >= 2 and p.step_accuracy == 1.0
    assert p.claims == 1 and p.claim_truth == 1.0


def test_a_claim_after_a_wrong_equation_is_false_and_the_step_counts_wrong():
    # the surface of a trace copied: the arithmetic is wrong, the claim is made anyway
    response = ("<think>\nI need 50 from [6, 7, 9].\nTry 6 * 7 = 42, 42 + 9 = 51: too big. Wait, no.\n"
                "Try 7 * 9 = 56, 56 - 6 = 50. That reaches the target!\n</think>\n\n\\boxed{7 * 9 - 6}")
    p = _one(response, 50)
    assert (p.steps, p.correct_steps) == (4, 3)  # 7 * 9 is 63, not 56
    assert p.claims == 1 and p.true_claims == 0


def test_a_claim_whose_right_steps_end_elsewhere_than_the_target_is_false():
    response = "<think>\nTry 2 + 3 = 5, 5 * 4 = 20. That reaches the target!\n</think>\n\\boxed{(2 + 3) * 4}"
    p = _one(response, 24)
    assert p.step_accuracy == 1.0 and p.claim_truth == 0.0


def test_a_claim_with_no_step_before_it_is_false():
    p = _one("<think>\nThis is the target, I am sure.\n</think>\n\\boxed{1 + 2}", 3)
    assert p.claims == 1 and p.true_claims == 0 and p.step_accuracy is None


def test_only_the_thinking_is_read_when_the_response_opens_one():
    response = "<think>\n2 + 2 = 4\n</think>\n\nSo 2 + 2 = 5, which is the target.\n\\boxed{2 + 2}"
    assert reasoning_text(response) == "\n2 + 2 = 4\n"
    p = _one(response, 5)
    assert (p.steps, p.correct_steps, p.claims) == (1, 1, 0)
    # no thinking opened: the whole response is the reasoning
    p = _one("6 / 4 = 1.5 and 1.5 x 2 = 3, which is the target.", 3)
    assert (p.steps, p.correct_steps, p.claims, p.true_claims) == (2, 2, 1, 1)


def test_a_step_inside_a_longer_chain_is_not_read_as_a_binary_step():
    assert [ok for ok, _ in arithmetic_steps("1 + 2 + 3 = 6")] == []
    assert [ok for ok, _ in arithmetic_steps("12 + 5 = 17, 17 - 20 = 3.")] == [True, False]
    assert [ok for ok, _ in arithmetic_steps("7 / 2 = 3.5. And 1.5 * 2 = 3")] == [True, True]
    assert arithmetic_steps("5 / 0 = 1")[0][0] is False


def test_no_step_and_no_claim_give_none_not_zero():
    p = _one("I cannot solve this.", 10)
    assert p.responses == 1 and p.step_accuracy is None and p.claim_truth is None


def test_countdown_procedure_reads_the_target_from_each_prompt():
    rows = make_dataset(20, seed=5)
    samples = [{"prompt": "<|im_start|>user\n" + r["prompt"] + "<|im_end|>", "response": r["response"]} for r in rows]
    p = countdown_procedure(samples)
    assert p.responses == 20 and p.claims == 20 and p.claim_truth == 1.0 and p.step_accuracy == 1.0
    wrong_target = [{"prompt": prompt_for(r["answer"]["numbers"], r["answer"]["target"] + 1),
                     "response": r["response"]} for r in rows]
    assert countdown_procedure(wrong_target).claim_truth == 0.0
    with pytest.raises(ValueError, match="not a Countdown prompt"):
        countdown_procedure([{"prompt": "What is 2 + 2?", "response": "4"}])


def test_the_report_shows_the_procedure_per_checkpoint(tmp_path):
    import csv
    import json

    from rsft.report import write_report
    from rsft.rundir import samples_of
    from helpers import plant

    run = tmp_path / "quick"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: embedded:smollm2-135m-instruct\n"
                                     "data:\n  path: embedded:countdown\n")
    prompt = prompt_for([6, 7, 8], 50)
    right = "<think>\nTry 6 * 7 = 42, 42 + 8 = 50. That reaches the target!\n</think>\n\\boxed{6 * 7 + 8}"
    copied = "<think>\nTry 7 * 9 = 56, 56 - 6 = 50. That reaches the target!\n</think>\n\\boxed{7 * 9 - 6}"
    for step, response in ((0, right), (15, copied)):
        path = samples_of(plant(run, step, "countdown", 0.5, n=4, responses=(response,)))
        puzzles = [{"numbers": [6, 7, 8], "target": 50}] * 3 + [{"numbers": [2, 3], "target": 6}]  # 1/15, 1/3
        lines = [{**json.loads(x), "prompt": prompt, "doc": doc} for x, doc in zip(path.read_text().splitlines(),
                                                                                puzzles, strict=True)]
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    write_report([run], tmp_path / "rep")
    rows = {r["step"]: r for r in csv.DictReader((tmp_path / "rep/procedure.csv").open())}
    assert rows["0 (base)"]["steps right %"] == "100.0" and rows["0 (base)"]["claims true %"] == "100.0"
    assert rows["15"]["steps right %"] == "50.0" and rows["15"]["claims true %"] == "0.0"
    assert rows["15"]["target claims"] == "4"
    # each puzzle once, whatever its repeats: (1/15 + 1/3) / 2 (the first puzzle's three samples are not weighed 3x)
    assert rows["15"]["random guess %"] == rows["0 (base)"]["random guess %"] == "20.0"
    headline = (tmp_path / "rep/report.md").read_text()
    # the weak-model story: the surface (replies in the traces' form: the base's 3 of 4 use the puzzle's numbers,
    # step 15's none) and the substance (the score against each question's random guess, paired)
    assert ("Surface: 75% of the Countdown replies at the base and 0% at step 15 are in the training traces' form"
            in headline)
    assert "Substance: at step 15 it solves 50% of the puzzles, against 13.3% for a random guess" in headline


@pytest.mark.parametrize("doc", [None, "6 7 8", {"numbers": ["6", "7", "8"], "target": 50},
                                 {"numbers": [6, 7, 8], "target": "50"}, {"numbers": [6, 7, 8], "target": True},
                                 {"numbers": [1, 2, 3, 4, 5], "target": 15}])
def test_no_random_guess_is_stated_for_samples_that_are_not_countable_countdown_puzzles(doc):
    from rsft.report_behaviour import guess_rate

    good = {"doc_id": 0, "doc": {"numbers": [2, 3], "target": 6}}
    assert guess_rate([good]) == pytest.approx(1 / 3)
    assert guess_rate([good, {"doc_id": 1, "doc": doc}]) is None and guess_rate([]) is None
