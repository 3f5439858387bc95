"""Grading: right answers score 1, wrong 0, cut-off thinking 0, and hostile outputs return within the bound."""
import time

import pytest

from rsft.code_grading import extract_code
from rsft.grading import (GRADE_TIMEOUT_S, extract_choice, grade_choice, grade_countdown, grade_ifeval, grade_math,
                          grade_yes_no, last_boxed, parse)
from rsft.tasks.common import extract

THINK = "<think>\nLet me compute. Maybe \\boxed{7}? Wait, no.\n</think>\n\n"


@pytest.mark.parametrize("response,gold,ok", [
    (THINK + "So the answer is \\boxed{42}.", "42", True),
    (THINK + "So the answer is \\boxed{41}.", "42", False),
    (THINK + "\\boxed{\\frac{1}{2}}", "0.5", True),
    (THINK + "\\boxed{\\dfrac{3}{4}}", "\\frac{3}{4}", True),
    (THINK + "\\boxed{2\\sqrt{2}}", "\\sqrt{8}", True),
    (THINK + "\\boxed{x^2+2x+1}", "(x+1)^2", True),
    ("The answer is \\boxed{7}", "7", True),  # no thinking (a base model): graded whole
    ("<think>\nlong thought ... \\boxed{7} and then the budget ran out", "7", False),  # truncated thinking
    ("<think>\nI think it is 42\n</think>\n\nNo final answer here.", "42", False),  # 42 only inside thinking
])
def test_grade_math(response, gold, ok):
    assert grade_math(response, gold) is ok


def test_the_answer_is_read_after_thinking_only():
    assert grade_math("<think>\\boxed{5}</think>\\boxed{7}", "7")
    assert not grade_math("<think>\\boxed{7}</think>\\boxed{5}", "7")


@pytest.mark.parametrize("response,gold,ok", [
    (THINK + "\\boxed{C}", "C", True),
    (THINK + "\\boxed{(c)}", "C", True),
    (THINK + "\\boxed{\\text{B}}", "B", True),
    (THINK + "Therefore, the answer is (D).", "D", True),
    (THINK + "The answer is B", "D", False),
    ("<think>the answer is (D)", "D", False),  # cut off inside thinking
    ("<think>the answer is (D)</think>I am not sure.", "D", False),  # only inside thinking
])
def test_grade_choice(response, gold, ok):
    assert grade_choice(response, gold) is ok


def test_choice_takes_the_last_answer_pattern():
    assert extract_choice(THINK + "The answer is (A). Hmm, actually the answer is (B).") == "B"


@pytest.mark.parametrize("response,ok", [
    (THINK + "\\boxed{(19 + 49) - 9}", True),
    (THINK + "\\boxed{(19 + 49) - 9 = 59}", True),
    (THINK + "\\boxed{19 + 49 - 8}", False),
    (THINK + "\\boxed{__import__('os').system('touch /tmp/pwned')}", False),
    ("<think>\\boxed{(19 + 49) - 9}", False),
])
def test_grade_countdown(response, ok):
    assert grade_countdown(response, [19, 9, 49], 59) is ok


def test_last_boxed_handles_nesting_and_unclosed_braces():
    assert last_boxed("\\boxed{\\frac{1}{2}} then \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("\\boxed{7} and \\boxed{" + "{" * 3000) == "7"
    assert last_boxed("no box") is None


HOSTILE = [
    "x" * 100_000,
    "\\boxed{" * 5000,
    "{" * 100_000 + "\\boxed{1}",
    "\\boxed{9^{9^{9^{9^{9}}}}}",
    "\\boxed{" + "1+" * 50_000 + "1}",
    "\\boxed{10^{10^{10^{10}}}!}",
    "</think>" * 10_000 + "\\boxed{" + "(" * 1000 + "}",
]


@pytest.mark.parametrize("response", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_outputs_return_within_the_bound(response):
    t = time.perf_counter()
    assert grade_math(response, "3") is False
    assert grade_choice(response, "A") is False
    assert grade_countdown(response, [1, 2], 3) is False
    assert time.perf_counter() - t < GRADE_TIMEOUT_S + 2  # the bound is 10 s


def test_parse_reports_truncation():
    assert parse("<think>never closed").truncated
    assert not parse("<think>closed</think> \\boxed{1}").truncated
    assert parse("<think>closed</think> \\boxed{1}").boxed == "1"


@pytest.mark.parametrize("response,gold,ok", [
    ("<think>\nIs it? Yes... no, wait.\n</think>\n\nNo", "no", True),
    ("</think>Yes, it contains a made-up date. So: No.", "no", True),  # the last Yes/No counts
    ("</think>YES", "yes", True),
    ("</think>Yesterday it was not.", "no", False),  # whole words only: no answer
    ("<think>\nClearly yes", "yes", False),  # cut off inside thinking
    ("<think>yes</think>I cannot tell.", "yes", False),  # only inside thinking
])
def test_grade_yes_no(response, gold, ok):
    assert grade_yes_no(response, gold) is ok


def test_ifeval_uses_lm_evals_checkers_on_the_reply_after_thinking():
    doc = {"key": 1, "prompt": "Wrap your reply in double quotes, all lowercase.",
           "instruction_id_list": ["startend:quotation", "change_case:english_lowercase"], "kwargs": [{}, {}]}
    think = "<think>\nThe User Wants Quotes, And Lowercase.\n</think>\n\n"
    assert grade_ifeval(think + '"hello there"', doc)["prompt_strict"]
    loose_only = grade_ifeval(think + 'sure:\n"hello there"', doc)  # loose drops the first line
    assert loose_only["inst_strict"] == [False, True] and loose_only["prompt_loose"]
    assert grade_ifeval('<think>\n"hello there"', doc) == {"prompt_strict": False, "prompt_loose": False,
                                                          "inst_strict": [False, False], "inst_loose": [False, False]}


def test_extract_reads_each_tasks_kind_of_answer():
    r = "<think>\\boxed{1} yes\n```python\nx=1\n```\n</think>\n\nSo \\boxed{2}, yes.\n```python\nprint(2)\n```"
    assert [extract(k, r) for k in ("boxed", "yes_no", "code")] == ["2", "yes", "print(2)\n"]
    assert extract("text", r).startswith("So") and extract("text", "<think>never closed") is None


@pytest.mark.parametrize("response", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_outputs_return_within_the_bound_for_yes_no_and_code(response):
    t = time.perf_counter()
    assert grade_yes_no(response, "yes") is False
    assert extract_code(response) is None and extract_code("```python\n" * 50_000) is None
    assert time.perf_counter() - t < 2
