"""Option letters (GPQA-Diamond, MMLU-Pro): strict, the letter after thinking; the paper's, MMLU-Pro's first regex
match and GPQA's last box, over the whole reply."""
from __future__ import annotations

import re

from rsft.grading import parse


# strict: "answer is (X)", "answer is: X", "Answer: X", "**Answer:** X", "final answer: (X)"
_ANSWER_IS = re.compile(r"answer(?:\s+is\s*:?|\s*:)[\s*]*\(?([A-J])\)?(?![A-Za-z0-9])", re.IGNORECASE)
# a boxed option: the letter alone, in \text{}, or followed by its text ("(B) Paris", "B. 1.5 m/s", "B) ...")
_LETTER_BOX = re.compile(r"^\s*(?:\\(?:text|textbf|mathrm)\s*\{)?\s*(?:\(([A-J])\)|([A-J])(?=\s*(?:[.:)}]|$)))",
                         re.IGNORECASE | re.DOTALL)


def extract_choice(response: str) -> str | None:
    """strict: the option letter after thinking: the last \\boxed{} holding an option (its letter alone or with the
    option's text), else the last 'answer is (X)' / 'Answer: X'."""
    p = parse(response)
    if p.truncated:
        return None
    if p.boxed is not None:
        m = _LETTER_BOX.match(p.boxed)
        if m:
            return (m.group(1) or m.group(2)).upper()
    found = _ANSWER_IS.findall(p.answer_text[-20000:])
    return found[-1].upper() if found else None


def grade_choice(response: str, gold: str) -> bool:
    """strict multiple choice (GPQA-Diamond, MMLU-Pro): the letter extract_choice reads equals the gold letter."""
    letter = extract_choice(response)
    return letter is not None and letter == str(gold).strip().upper()


# The paper's MMLU-Pro filter (lm-eval tasks/mmlu_pro/_default_template_yaml): this regex over the whole reply,
# thinking included, the first match taken (the regex filter, then take_first), "[invalid]" when none.
MMLU_PRO_PAPER_REGEX = re.compile(r"(?:answer is \(?([ABCDEFGHIJ])\)?|\\boxed\{(?:\\text\{)?([A-Z])(?:\})?\})")
_PUNCT = str.maketrans("", "", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def mmlu_pro_paper_answer(response: str) -> str:
    """What the paper's MMLU-Pro filter extracts: the first regex match anywhere, else "[invalid]"."""
    found = MMLU_PRO_PAPER_REGEX.findall(response)
    if not found:
        return "[invalid]"
    groups = [g for g in found[0] if g]
    return groups[0].strip() if groups else "[invalid]"


def grade_mmlu_pro_paper(response: str, gold: str) -> bool:
    """The paper's MMLU-Pro score: lm-eval's exact_match (ignore_case, ignore_punctuation) of its extraction."""
    norm = lambda s: str(s).lower().translate(_PUNCT)  # noqa: E731
    return norm(mmlu_pro_paper_answer(response)) == norm(gold)


_GPQA_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (  # the paper's, in its order; the first found wins
    r"(?:correct answer|right answer|answer)\s*(?:is|:)\s*([A-D])",
    r"(?:choose|select|pick)\s*(?:option)?\s*([A-D])",
    r"(?:option|choice)\s*([A-D])\s*(?:is correct|is right)",
    r"\b([A-D])\s*(?:is correct|is right|is the answer)",
)]


def _paper_last_boxed(text: str) -> str | None:
    """evalchemy's last_boxed_only_string: the last `\\boxed{...}` with its balanced braces, wrapper included."""
    idx = text.rfind("\\boxed{")
    if idx < 0:
        return None
    depth = 0
    for i in range(idx, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[idx : i + 1]
    return None


def gpqa_paper_answer(response: str) -> str:
    """What the paper's GPQA-Diamond scorer (evalchemy GPQADiamond/testing_utils.py) reads, thinking included: the
    last balanced \\boxed{} anywhere (else the whole reply), its answer patterns inside that text, else the text
    itself if it is exactly one letter A-D; "" for no answer (so `\\boxed{\\text{B}}` reads as no answer)."""
    pred = response
    boxed = _paper_last_boxed(response)
    if boxed:
        inner = re.search(r"\\boxed\{(.*)\}", boxed)
        pred = inner.group(1) if inner else boxed
    if not pred:
        return ""
    for pattern in _GPQA_PATTERNS:
        m = pattern.search(pred)
        if m:
            return m.group(1).upper()
    pred = pred.rstrip(".").rstrip("/").strip()
    return pred.upper() if len(pred) == 1 and pred.upper() in "ABCD" else ""


def grade_gpqa_paper(response: str, gold: str) -> bool:
    return gpqa_paper_answer(response) == gold
