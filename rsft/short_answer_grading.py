"""Short answers compared exactly: a word problem's whole number, HaluEval's Yes/No (strict and the paper's),
a Countdown expression (parsed, never executed), a reasoning-gym answer (its own scorer)."""
from __future__ import annotations

import functools
import json
import re

from rsft.countdown import is_solution
from rsft.grading import check_mode, paper_strip_thinking, parse


# ------------------------------------------------------------------------------------------------ whole numbers

_INTEGER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?![\d.]*\d)")


def extract_number(response: str) -> str | None:
    """A whole-number answer, read flexibly: the last integer in the last \\boxed{} after thinking, else (no box,
    or one without a number) the last integer of the reply after thinking, as lm-eval's gsm8k "flexible-extract"
    reads the last number. The quickstart's out-of-domain tasks read it so: the 135M base model answers "the
    answer is 8" and never boxes, the trained one boxes; a boxed-only reading would score the format, not the
    arithmetic. Cut-off thinking gives None."""
    p = parse(response)
    if p.truncated:
        return None
    found = _INTEGER.findall(p.boxed or "") or _INTEGER.findall(p.answer_text[-20000:])  # "\\boxed{}. It is 8"
    return found[-1].replace(",", "") if found else None


def _integer_text(text: str) -> str:
    """An integer's canonical digits (sign kept, leading zeros and a plus dropped): compared as text, so an answer
    of any length is exact (int() refuses past 4,300 digits)."""
    text = text.strip().lstrip("+")
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    digits = digits.lstrip("0") or "0"
    if not digits.isdigit():
        return text
    return digits if digits == "0" else sign + digits  # -0 is 0


def grade_number(response: str, gold: str) -> bool:
    answer = extract_number(response)
    return answer is not None and _integer_text(answer) == _integer_text(str(gold))


# ------------------------------------------------------------------------------------------------ yes / no


_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def extract_yes_no(response: str) -> str | None:
    """strict: the last standalone Yes/No (any case) after thinking, lower-cased (HaluEval's judgement)."""
    p = parse(response)
    if p.truncated:
        return None
    found = _YES_NO.findall(p.answer_text[-20000:])
    return found[-1].lower() if found else None


def halueval_paper_answer(response: str) -> str:
    """What the paper's HaluEval process_results judges (its lm-eval tasks/halueval/utils.py): the last whole-word
    Yes/No after its think-stripping (so in a reply whose thinking never closed, the last one in the thinking), else
    the reply's first line, lower-cased; then "yes" or "no" if exactly one of them occurs in it as a substring."""
    found = re.findall(r"\b(Yes|No)\b", paper_strip_thinking(response).strip(), re.IGNORECASE)
    prediction = found[-1].lower() if found else response.strip().split("\n")[0].lower()
    if ("yes" in prediction) == ("no" in prediction):
        return ""  # both or neither: wrong whatever the label
    return "yes" if "yes" in prediction else "no"


def grade_yes_no(response: str, gold: str, mode: str = "strict") -> bool:
    check_mode(mode)
    answer = halueval_paper_answer(response) if mode == "paper" else extract_yes_no(response)
    return bool(answer) and answer == str(gold).strip().lower()


# ------------------------------------------------------------------------------------------------ countdown


def extract_countdown(response: str) -> str | None:
    p = parse(response)
    if p.truncated or p.boxed is None:
        return None
    return p.boxed.split("=")[0].strip()  # "(1 + 2) * 3 = 9" -> the left side


def grade_countdown(response: str, numbers: list[int], target: int) -> bool:
    """The boxed expression uses every number exactly once and equals the target (parsed, never executed)."""
    expr = extract_countdown(response)
    return expr is not None and is_solution(expr, list(numbers), int(target))


# ------------------------------------------------------------------------------------------------ reasoning-gym


# reasoning-gym datasets whose score_answer was read (0.1.25) and only compares strings and sets; some others
# eval() the answer (number_sorting, spiral_matrix, ...), so a dataset is added here only after reading its scorer
RG_SCORERS_READ = frozenset({"basic_arithmetic", "knights_knaves"})


@functools.lru_cache(maxsize=None)
def _rg_scorer(dataset: str):
    if dataset not in RG_SCORERS_READ:
        raise ValueError(f"reasoning-gym {dataset}: its score_answer has not been read (RG_SCORERS_READ)")
    from reasoning_gym import get_score_answer_fn

    return get_score_answer_fn(dataset)


def grade_reasoning_gym(response: str, doc: dict) -> bool:
    """reasoning-gym's own score_answer for doc's dataset (string and set comparisons; nothing is executed) on the
    last \\boxed{} after thinking, stripped. Only its full score counts: partial credit (some roles right, the gold
    inside a longer answer) is not a correct answer. doc: a row of rsft.tasks.reasoning_gym_tasks.reasoning_gym_rows."""
    p = parse(response)
    if p.truncated or p.boxed is None or not p.boxed.strip():
        return False
    entry = {"question": doc["question"], "answer": doc["answer"], "metadata": json.loads(doc["metadata"])}
    score = _rg_scorer(doc["dataset"])  # an unread dataset raises here, before any answer is scored
    try:
        return score(p.boxed.strip(), entry) == 1.0
    except Exception:  # noqa: BLE001  (a scorer that chokes on an odd answer: not a right answer)
        return False
