"""Grading: right answers score 1, wrong 0, cut-off thinking 0 (strict), hostile outputs return within the bound,
and grade_math works from any script. The paper's own extraction per benchmark: tests/test_paper_protocol.py."""
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rsft.choice_grading import extract_choice, grade_choice, grade_gpqa_paper, grade_mmlu_pro_paper
from rsft.code_grading import extract_code
from rsft.errors import UserError
from rsft.grading import last_boxed, parse, split_thinking
from rsft.instruction_grading import grade_ifeval
from rsft.math_grading import GRADE_TIMEOUT_S, MathVerifier, bare_answer, grade_math
from rsft.short_answer_grading import grade_countdown, grade_yes_no
from rsft.tasks.common import extract

ROOT = Path(__file__).resolve().parent.parent

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


@pytest.mark.parametrize("response,gold,ok", [  # errors the kit made on other projects' grader suites (issue 15)
    (THINK + "\\boxed{.25}", "25", False),  # the exact-match shortcut stripped the leading dot
    (THINK + "\\boxed{.25}", "0.25", True),
    (THINK + "\\boxed{-2} and \\boxed{1}", "-2, 1", True),  # every box of the final answer, as math-verify joins
    (THINK + "\\boxed{-2}, \\boxed{1}", "-2, 1", True),
    (THINK + "\\boxed{-2} and \\boxed{1}", "1", False),  # and not credited for one of them
    (THINK + "So x = 3 or x = 5", "5", False),  # an unboxed hedge is no answer
    (THINK + "The answer is 3 or 5.", "3", False),
    (THINK + "The answer is 5.", "5", True),  # an unboxed answer after "answer" still counts
    (THINK + "We get 12, and then 5", "5", False),  # ... but never a bare last number inside prose
    (THINK + "So the answer is \\boxed{5}.</think>", "5", True),  # a stray </think> after the answer
])
def test_grade_math_on_the_cases_other_graders_get_right(response, gold, ok):
    assert grade_math(response, gold) is ok


def test_a_stray_closing_tag_after_the_answer_leaves_the_answer():
    assert split_thinking("<think>a</think>\n\\boxed{5}</think>\n") == ("\n\\boxed{5}", False)
    assert split_thinking("<think>a</think>") == ("", False)


def test_paper_mode_reads_the_whole_response_thinking_included():
    cut = "<think>\nSo it is \\boxed{7}, and then the budget ran"  # never closed
    assert grade_math(cut, "7", mode="paper") and not grade_math(cut, "7")
    closed = "<think>\nLet me compute 6 times 7.\n</think>\n\n"
    assert grade_math(closed + "\\boxed{42}", "42", mode="paper") and grade_math(closed + "\\boxed{42}", "42")
    assert not grade_math(THINK + "No final answer here.", "42", mode="paper")  # the 7 in its thinking is read
    with pytest.raises(ValueError, match="unknown scoring mode 'lenient'"):
        grade_math(THINK, "1", mode="lenient")


def test_grade_math_works_from_a_plain_script(tmp_path):
    """No `if __name__ == "__main__":` guard (a notebook-style script): the worker must not re-import it."""
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent("""\
        from rsft.math_grading import grade_math
        print(grade_math("\\\\boxed{\\\\frac{1}{2}}", "0.5"), grade_math("\\\\boxed{\\\\frac{1}{3}}", "0.5"))
        """))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_grade_math_works_from_threads():
    from concurrent.futures import ThreadPoolExecutor

    cases = [(THINK + f"\\boxed{{\\frac{{{i}}}{{2}}}}", str(i / 2 if i % 3 else i)) for i in range(1, 13)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda c: grade_math(*c), cases))
    assert got == [bool(i % 3) for i in range(1, 13)]  # i/2 right; i (for i divisible by 3) wrong


def test_a_worker_that_cannot_start_raises_instead_of_scoring_zero():
    broken = MathVerifier()
    broken.command = [sys.executable, "-c", "import sys; sys.exit('ModuleNotFoundError: no math_verify here')"]
    with pytest.raises(UserError, match="did not start within .*no math_verify here"):
        broken("\\boxed{1}", "\\boxed{1}")


def test_the_answer_is_read_after_thinking_only():
    assert grade_math("<think>\\boxed{5}</think>\\boxed{7}", "7")
    assert not grade_math("<think>\\boxed{7}</think>\\boxed{5}", "7")


# A bare final answer (GRADER_VERSION 3): a reply that closes its thinking and then states one expression has
# answered. Hand-written cases in the style of math-verify's tests (gold, reply, verdict) and of the MATH dataset's
# equivalence tests (one pair per kind of answer), with the verdict of each mode: strict reads the bare answer after
# `</think>`; paper is math-verify over the whole reply, which needs no `</think>` and misses what it cannot parse
# without delimiters.
CLOSED = "<think>\nFirst 2 + 2 = 4, then I need more steps.\n</think>\n\n"


@pytest.mark.parametrize("answer,gold,strict,paper", [
    ("10", "10", True, True),  # an integer
    ("10", "11", False, False),
    (".1", "0.1", True, True),  # a leading dot is a decimal, not 1
    (".1", "1", False, False),
    ("\\frac{1}{2}", "0.5", True, True),  # MATH test_fractions
    ("\\dfrac{1}{2}", "\\frac12", True, False),  # MATH test_dfrac
    ("$\\frac{1}{2}$", "1/2", True, True),  # inline delimiters
    ("\\(\\sqrt{8}\\)", "2\\sqrt{2}", True, True),
    ("\\[\n\\frac{3}{4}\n\\]", "0.75", True, True),  # a display block on lines of its own
    ("**5**", "5", True, True),  # markdown bold
    ("## 10", "10", True, True),  # a markdown heading
    ("5.", "5", True, True),  # a closing full stop
    ("(x-2)(x+2)", "x^2-4", True, False),  # paper: math-verify finds no expression without delimiters
    ("x = 5", "5", True, True),  # an equation for the unknown
    ("3, 5", "3, 5", True, False),  # a set of solutions is one answer
    ("3, 5", "3", False, False),  # and is not one of its members
    ("\\text{Evelyn}", "\\text{Evelyn}", True, False),  # MATH test_text
    ("90^\\circ", "90", True, True),  # MATH test_degrees
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", True, False),
    ("Collecting the terms above.\n\n$x = 5$", "5", True, True),  # ends with a line that is only one expression
])
def test_a_bare_final_answer_after_closed_thinking_is_the_answer(answer, gold, strict, paper):
    assert grade_math(CLOSED + answer, gold) is strict
    assert grade_math(CLOSED + answer, gold, mode="paper") is paper


@pytest.mark.parametrize("answer,gold,paper", [
    ("3 or 5", "3", False),  # a hedge between candidates
    ("3 or 5", "5", True),  # (paper: math-verify reads the last number)
    ("x = 3 or x = 5\n\n5", "5", True),  # a hedge earlier after thinking: no bare reading at all
    ("either 2\n\n2", "2", True),
    ("We get 12, and then 5", "5", True),  # a bare number inside prose (paper: math-verify's last number)
    ("The total is 5 apples", "5", True),
    ("5 cm", "5", True),  # a word after it: prose, not one expression
    ("答案是5", "5", False),  # prose in any script
    ("x: 5", "5", True),  # a clause, not an expression
    ("---", "5", False),  # punctuation alone
])
def test_hedges_and_numbers_inside_prose_stay_wrong_in_strict(answer, gold, paper):
    assert grade_math(CLOSED + answer, gold) is False
    assert grade_math(CLOSED + answer, gold, mode="paper") is paper


@pytest.mark.parametrize("response,gold", [
    ("<think>\nSo the value is\n10", "10"),  # cut off mid-thought: its last line is no answer
    ("<think>\n\\frac{1}{2}", "0.5"),
    ("10", "10"),  # no thinking at all (a base model): a bare line is graded only after a closed </think>
    ("We get 12, and then 5", "5"),
])
def test_a_bare_line_without_closed_thinking_is_no_answer_in_strict(response, gold):
    assert grade_math(response, gold) is False


def test_math_tasks_count_a_bare_final_answer_as_an_answer_not_as_none():
    from rsft.tasks.math500 import utils as math500

    replies = [CLOSED + "10", CLOSED + "\\boxed{10}", CLOSED + "We get 12, and then 10", "<think>\n10"]
    assert [extract("math", r) for r in replies] == ["10", "10", None, None]
    out = math500.process_results({"answer": "10"}, [replies])
    assert (out["acc_strict"], out["no_answer"], out["truncated"]) == (0.5, 0.25, 0.25)


def test_bare_answer_reads_only_the_final_line():
    assert bare_answer("Some words first.\n\n\\frac{1}{2}.") == "\\frac{1}{2}"
    assert bare_answer("$$\n2\\pi\n$$") == "2\\pi"
    assert bare_answer("\\frac{1}{2} is the answer") is None
    assert bare_answer("Answer: 5") is None  # "answer" lines are read by the anchored rule, not this one
    assert bare_answer("1+" * 1500 + "1") is None  # longer than any final answer (MAX_ANSWER_CHARS)


@pytest.mark.parametrize("response,gold,ok", [
    (THINK + "\\boxed{C}", "C", True),
    (THINK + "\\boxed{(c)}", "C", True),
    (THINK + "\\boxed{\\text{B}}", "B", True),
    (THINK + "Therefore, the answer is (D).", "D", True),
    (THINK + "The answer is B", "D", False),
    ("<think>the answer is (D)", "D", False),  # cut off inside thinking
    ("<think>the answer is (D)</think>I am not sure.", "D", False),  # only inside thinking
    (THINK + "\\boxed{(B) Paris}", "B", True),  # a box holding the option's text too
    (THINK + "\\boxed{B. 1.5 m/s}", "B", True),
    (THINK + "\\boxed{\\text{(D)} Neon}", "D", True),
    (THINK + "So the final line:\n**Answer: B**", "B", True),
    (THINK + "**Answer:** (C)", "C", True),
    (THINK + "\\boxed{A + B}", "A", False),  # an expression, not an option
    (THINK + "The answer I got is B", "B", False),  # "answer" without "is" or ":" names no option
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
    "<think>" * 20_000 + "Yes",  # quadratic for the paper's own think-stripping regexes
]


@pytest.mark.parametrize("response", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_outputs_return_within_the_bound(response):
    grade_math("\\boxed{1}", "2")  # the worker started (a restart after a kill is bounded apart: WORKER_START_S)
    t = time.perf_counter()
    assert grade_math(response, "3") is False
    assert grade_choice(response, "A") is False
    assert grade_countdown(response, [1, 2], 3) is False
    assert time.perf_counter() - t < GRADE_TIMEOUT_S + 2  # the bound is 10 s
    grade_math("\\boxed{1}", "2", mode="paper")  # restarted, if the strict call had to kill it
    t = time.perf_counter()
    assert grade_math(response, "3", mode="paper") is False
    assert not (grade_mmlu_pro_paper(response, "A") or grade_gpqa_paper(response, "A") or
                grade_yes_no(response, "no", mode="paper"))
    assert time.perf_counter() - t < GRADE_TIMEOUT_S + 2


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


@pytest.mark.parametrize("reply, answer", [
    ("Sam has 5 + 3 = 8 apples. The answer is 8.", "8"),  # no box: the reply's last number (the 135M base)
    ("2 + 3 = 5, so \\boxed{5} and 7 more words", "5"),  # a box wins over later numbers
    ("\\boxed{8 apples}", "8"),
    ("The answer is \\boxed{}. Sam has 8.", "8"),  # an empty box: the reply's number
    ("a total of 1,200", "1200"),
    ("<think>2 + 3 = 5", None),  # cut-off thinking answers nothing
    ("<think>2 + 3 = 4? no, 5</think>So it is 5.", "5"),
    ("it is 2.5", None),  # not a whole number
    ("no number here", None),
])
def test_whole_number_answers_are_read_flexibly(reply, answer):
    from rsft.short_answer_grading import extract_number, grade_number

    assert extract_number(reply) == answer and extract(kind="number", response=reply) == answer
    assert grade_number(reply, "8") is (answer == "8")


def test_a_whole_number_answer_of_any_length_is_compared_exactly():
    """Python's int() refuses strings past 4,300 digits; the word problems' grader compares the digits instead."""
    from rsft.short_answer_grading import grade_number

    big = "1" + "0" * 5000
    assert grade_number(f"<think>\nok\n</think>\nThe answer is \\boxed{{{big}}}", big)
    assert not grade_number(f"<think>\nok\n</think>\nThe answer is \\boxed{{{big}1}}", big)
    assert grade_number("<think>\nok\n</think>\nIt is 08.", "8") and grade_number("<think>\nok\n</think>\n-0", "0")
    assert not grade_number("<think>\nok\n</think>\nIt is 9.", "8") and not grade_number("<think>\nok\n</think>\n-3", "3")
