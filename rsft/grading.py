"""Scoring, one module for every task: text in, score out. Two scorings of each answer, side by side.

`strict` (the kit's reasoning-correct scoring): the answer is read after the last `</think>`. A response that opened
`<think>` and never closed it was cut off mid-thought (the token budget ran out): it scores 0 and counts as
truncated, never graded on its thinking. A response with no `<think>` at all (a base model at step 0) is graded whole.

`paper`: the paper's released code, character for character (github Nebularaid2000/rethink_sft_generalization
@ 3378e2b; GPQA and LiveCodeBench @ 4a20109), which mostly reads the whole response, thinking included, so a reply
whose thinking never closed can still score: math-verify over the whole response (math_eval_budget.py), MMLU-Pro's
first regex match (its lm-eval template), GPQA's last box (evalchemy testing_utils.py), HaluEval's and IFEval's
think-stripping regexes (their lm-eval utils.py), LiveCodeBench's last python block (evalchemy eval_instruct.py).
Tasks the paper did not run (Countdown, reasoning-gym, HumanEval) have the strict scoring only.

Every grader returns within GRADE_TIMEOUT_S on any input (plus WORKER_START_S when the math worker must start):
answers are length-capped and scanned in linear time;
math-verify (sympy) runs in a worker process (`python -m rsft._verify_worker`) with a memory cap, killed and
restarted when a call overruns (math-verify's own `signal.alarm` timeouts work only on a main thread, and
`9^{9^{9^9}}` can hang sympy). The worker is started by module, so grading works from any script, thread or
notebook; a worker that cannot start raises an error instead of scoring anything.

One module of ~500 lines on purpose: every benchmark's text-in, score-out reading, the paper's and the strict one
side by side, so a change to one is made in sight of the other.
"""
from __future__ import annotations

import functools
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rsft.countdown import is_solution
from rsft.errors import UserError

GRADER_VERSION = 3  # part of every result; bump when any scoring below changes
GRADE_TIMEOUT_S = 8.0  # hard bound on one math-verify call (math-verify's own limits are 5 s for parse and verify)
WORKER_START_S = 60.0  # bound on the worker's start (importing sympy takes 1-3 s, longer on a loaded machine)
MAX_ANSWER_CHARS = 2000  # an extracted answer longer than this is not a final answer
MAX_REGION_CHARS = 20_000  # strict math reads at most the last 20k characters of the reply after thinking
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
MODES = ("strict", "paper")


@dataclass(frozen=True)
class Parsed:
    answer_text: str  # the text after thinking
    truncated: bool  # thinking opened but never closed
    boxed: str | None  # content of the last \boxed{...} in answer_text


def split_thinking(response: str) -> tuple[str, bool]:
    """(the text after the last `</think>` that has any text after it, truncated). A stray `</think>` after the
    answer ("... \\boxed{5}</think>") leaves the answer before it, not an empty reply."""
    if THINK_CLOSE in response:
        parts = response.split(THINK_CLOSE)[1:]
        return next((p for p in reversed(parts) if p.strip()), ""), False
    if THINK_OPEN in response:
        return "", True
    return response, False


def last_boxed(text: str, tries: int = 5) -> str | None:
    r"""Content of the last balanced \boxed{...} (or \fbox{...}); linear in len(text) per try."""
    end = len(text)
    for _ in range(tries):
        start = max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))
        if start < 0:
            return None
        brace = text.find("{", start)
        if brace < 0 or text[start:brace].strip() not in ("\\boxed", "\\fbox"):
            end = start
            continue
        depth = 0
        for i in range(brace, min(len(text), brace + MAX_ANSWER_CHARS + 2)):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[brace + 1 : i]
        end = start  # unbalanced or too long: try the one before
    return None


def parse(response: str) -> Parsed:
    if not isinstance(response, str):
        response = ""
    answer, truncated = split_thinking(response)
    return Parsed(answer, truncated, None if truncated else last_boxed(answer))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; modes: {', '.join(MODES)}")


def _drop_closed_pairs(text: str, opening: str, closing: str) -> str:
    r"""re.sub(opening + r".*?" + closing + r"\s*", "", text, flags=re.DOTALL), in linear time (the regex retries
    every later opening tag when one has no closing tag after it: quadratic on a reply of many `<think>`)."""
    out, pos = [], 0
    while (i := text.find(opening, pos)) >= 0 and (j := text.find(closing, i + len(opening))) >= 0:
        out.append(text[pos:i])
        pos = j + len(closing)
        while pos < len(text) and text[pos].isspace():  # \s*: what str.isspace() calls whitespace
            pos += 1
    return "".join(out) + text[pos:]


def _drop_through_last(text: str, closing: str) -> str:
    """re.sub(r"^.*" + closing, "", text, flags=re.DOTALL): everything up to and including the last closing tag."""
    k = text.rfind(closing)
    return text if k < 0 else text[k + len(closing):]


def paper_strip_thinking(response: str) -> str:
    """The paper's lm-eval tasks (IFEval, HaluEval, TruthfulQA) remove thinking with four regex substitutions:
    closed `<think>...</think>` pairs (then strip), everything up to the last `</think>` (then lstrip), and the same
    two for `<|/think|>`. A reply whose thinking never closed is kept whole, `<think>` included. Computed here
    without the regexes, to the same result (tests/test_paper_protocol.py checks it against them)."""
    r = _drop_closed_pairs(response, "<think>", "</think>").strip()
    r = _drop_through_last(r, "</think>").lstrip()
    r = _drop_closed_pairs(r, "<think>", "<|/think|>").strip()
    return _drop_through_last(r, "<|/think|>").lstrip()


# the text each judged task's paper code handed its judge; every reply is judged and counted, unclosed ones whole
_PAPER_JUDGED = {
    "truthfulqa_gen": paper_strip_thinking,  # its lm-eval tasks/truthfulqa/utils.py process_results_gen
    "hexphi": lambda r: r.strip().split(THINK_CLOSE)[-1],  # HarmBench generate (.strip()), judge --remove_think
    "alpacaeval": lambda r: r.split(THINK_CLOSE)[-1].strip(),  # alpaca_eval/code/evaluate_reward.py extract_answer
}


PAPER_JUDGED = frozenset(_PAPER_JUDGED)  # the judge-scored tasks the paper ran (the others are the kit's additions)


def paper_judged_text(task: str, response: str) -> str:
    """What the paper's code showed the judge of `task` (truthfulqa_gen, hexphi, alpacaeval): the reply after its
    thinking as that code removed it, or the whole reply when thinking never closed (which it judged and counted)."""
    if task not in _PAPER_JUDGED:
        raise ValueError(f"{task}: the paper judged no such task; judged by the paper: {', '.join(_PAPER_JUDGED)}")
    return _PAPER_JUDGED[task](response)


# ------------------------------------------------------------------------------------------------ math


class MathVerifier:
    """One math-verify worker process (rsft/_verify_worker.py) over pipes; a call that overruns its timeout kills
    it and scores 0 (the next call starts a new one). A worker that cannot start raises UserError."""

    def __init__(self, timeout_s: float = GRADE_TIMEOUT_S, start_timeout_s: float = WORKER_START_S):
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.command = [sys.executable, "-m", "rsft._verify_worker"]
        self._proc = None
        self._pending = b""
        self._lock = threading.Lock()
        self.timeouts = 0

    def _read_line(self, deadline: float) -> bytes | None:
        """One line from the worker, or None at EOF or past the deadline."""
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def _start(self) -> None:
        root = Path(__file__).resolve().parent.parent  # the folder holding the rsft package: `-m` finds it there
        err = tempfile.TemporaryFile()
        self._pending = b""
        self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                      cwd=root, close_fds=True)
        if self._read_line(time.monotonic() + self.start_timeout_s) == b"ready":
            err.close()
            return
        self._kill()
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
        err.close()
        raise UserError(f"the math-verify worker ({' '.join(self.command)}) did not start within "
                        f"{self.start_timeout_s:.0f} s: {lines[-1] if lines else 'no output'}; check that "
                        f"`pip install -r requirements.txt` installed math-verify for {sys.executable}")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for f in (self._proc.stdin, self._proc.stdout):
                f.close()
        self._proc = None

    def __call__(self, gold: str, answer: str, config: str = "default") -> bool:
        """verify(parse(gold), parse(answer)) with math-verify's extraction `config` (default, anchored)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._kill()
                self._start()
            line = None
            try:
                self._proc.stdin.write((json.dumps([gold, answer, config]) + "\n").encode())
                self._proc.stdin.flush()
                line = self._read_line(time.monotonic() + self.timeout_s)
            except (BrokenPipeError, OSError):
                pass
            if line is not None:
                return line == b"true"
            self.timeouts += 1  # overran, or died (the memory cap): a wrong answer; the next call restarts it
            self._kill()
            return False

    def close(self) -> None:
        with self._lock:
            self._kill()


_VERIFIER: MathVerifier | None = None


def _verifier() -> MathVerifier:
    global _VERIFIER
    if _VERIFIER is None:
        _VERIFIER = MathVerifier()
    return _VERIFIER


def _norm(s: str) -> str:
    return re.sub(r"\s+|\\[,!;: ]|\\left|\\right|\$", "", s).rstrip(".")  # a trailing full stop only: .25 is not 25


def _gold_boxed(gold) -> str:
    gold = str(gold)
    return gold if "boxed" in gold else "\\boxed{" + gold + "}"  # as the paper's math_eval_budget.py wraps it


_HEDGE = re.compile(r"\b(?:or|either)\b", re.IGNORECASE)
# names a bare expression may hold besides one-letter variables: functions, constants, the `mod` of congruences
_MATH_WORDS = frozenset("sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh log ln lg exp sqrt pi inf "
                        "mod gcd lcm max min deg".split())
_TEXT_GROUP = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
_WORD = re.compile(r"[^\W\d_]{2,}")  # a run of two or more letters, any script
_DELIMITERS = (("**", "**"), ("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))  # stripped in this order


def _final_line(text: str) -> str:
    """The reply's last line, or its last display-math block (`\\[ ... \\]`, `$$ ... $$`) when it ends with one
    that stands on lines of its own."""
    text = text.rstrip()
    for opening, closing in (("\\[", "\\]"), ("$$", "$$")):
        if text.endswith(closing) and (k := text.rfind(opening, 0, len(text) - len(closing))) >= 0:
            if not text[:k].strip() or text[:k].rstrip(" \t").endswith("\n"):
                return " ".join(text[k:].split())
    return text.rsplit("\n", 1)[-1].strip()


def bare_answer(text: str) -> str | None:
    r"""The bare final answer of the text after thinking: its last line (or last display block) when that holds one
    expression and nothing else (`10`, `(x-2)(x+2)`, `.1`, `$\frac{1}{2}$`, `x = 5`, `\text{Evelyn}`), delimiters
    and a closing full stop removed; None when that line is prose ("We get 12, and then 5"), or any hedge ("or",
    "either") appears after thinking ("3 or 5", "x = 3 or x = 5\n5")."""
    if _HEDGE.search(text):
        return None
    line = _final_line(text)
    if len(line) > MAX_ANSWER_CHARS:
        return None
    line = re.sub(r"^#{1,6}\s+", "", line.rstrip(".").strip())  # a markdown heading's marks
    for opening, closing in _DELIMITERS:
        if len(line) > len(opening) + len(closing) and line.startswith(opening) and line.endswith(closing):
            line = line[len(opening) : -len(closing)].strip().rstrip(".").strip()
    if not line or re.search(r"(?<!\\)\$", line) or "`" in line or "?" in line:
        return None
    texts = _TEXT_GROUP.findall(line)
    if any(len(t.split()) > 2 for t in texts):
        return None  # a sentence inside \text{}
    bare = _TEXT_GROUP.sub(" ", re.sub(r"\\(?:begin|end)\s*\{[A-Za-z*]+\}", " ", line))  # \begin{pmatrix}
    bare = re.sub(r"\\[A-Za-z]+", " ", bare)  # commands: \frac, \sqrt, \pi, \circ
    if any(w.lower() not in _MATH_WORDS for w in _WORD.findall(bare)):
        return None  # a word: prose, not one expression
    if not re.search(r"[\w\\]", line) or re.search(r"[;:]\s|,\s*[^\W\d_]{2,}", bare):
        return None  # punctuation alone, or clauses ("5; so", "x: 5")
    return line


def grade_math(response: str, gold: str, mode: str = "strict") -> bool:
    """math-verify against the gold answer (gold first).

    strict: the reply after thinking. With a \\boxed{} there, math-verify reads it as it reads any reply (the last
    box, joined with the boxes listed just before it: `\\boxed{-2}, \\boxed{1}` is {-2, 1}); without one, after a
    closed `</think>`, a final line that is one expression and nothing else (bare_answer: `10`, `$\\frac{1}{2}$`);
    else only an answer it finds after "answer" ("The answer is 5", "Answer: 5"). Never one given as a choice
    ("3 or 5") nor a number inside prose ("We get 12, and then 5"). (GRADER_VERSION 2 read no bare line.)
    paper: math-verify's parse over the whole response, thinking included (math_eval_budget.py).
    """
    _check_mode(mode)
    if not isinstance(response, str):
        response = ""
    gold_text = _gold_boxed(gold)
    if mode == "paper":
        return bool(response.strip()) and _verifier()(gold_text, response)
    p = parse(response)
    if p.truncated:
        return False
    region = p.answer_text[-MAX_REGION_CHARS:]
    if p.boxed is not None:
        if region.count("\\boxed") == 1 and p.boxed.strip() and _norm(p.boxed) == _norm(str(gold)):
            return True  # fast path: one box, the gold as written; no worker round trip
        return _verifier()(gold_text, region)
    if THINK_CLOSE in response and (bare := bare_answer(region)) is not None:
        return _verifier()(gold_text, "\\boxed{" + bare + "}")  # thinking closed, then one expression: the answer
    after = re.split(r"(?i)answer", region)
    if len(after) < 2 or _HEDGE.search(after[-1]):
        return False  # no anchored answer, or a hedge between candidates
    return _verifier()(gold_text, region, "anchored")


def extract_math(response: str) -> str | None:
    """strict math's answer as the tasks report it (samples' `extracted`, the no-answer rate): the last \\boxed{}
    after thinking, else, after a closed `</think>`, the bare final answer (bare_answer). None for an answer only
    math-verify's anchored reading finds ("The answer is 5"), which grade_math still credits."""
    p = parse(response)
    if p.truncated or p.boxed is not None:
        return p.boxed
    return bare_answer(p.answer_text[-MAX_REGION_CHARS:]) if THINK_CLOSE in response else None


# ------------------------------------------------------------------------------------------------ choice

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
    _check_mode(mode)
    answer = halueval_paper_answer(response) if mode == "paper" else extract_yes_no(response)
    return bool(answer) and answer == str(gold).strip().lower()


# ------------------------------------------------------------------------------------------------ code (paper)

# LiveCodeBench as the paper ran it (evalchemy LiveCodeBench/eval_instruct.py and livecodebench_utils.py @ 4a20109),
# pure functions for the sandbox runner (rsft/code_grading.py): which code runs, how long, and when stdout passes.
LCB_PAPER_TEST_S = 6  # the paper's per-test timeout, which only enters its budget for the whole run below


def livecodebench_paper_code(response: str) -> str | None:
    """The code the paper ran: the last ```python block anywhere in the reply (thinking included), through its
    post_process_code; None when there is none. (With no block the paper's code takes the reply itself and runs its
    last character, a string's [-1], which prints nothing and so passes no test: the same 0 as no code.)"""
    blocks = re.findall(r"```python\n(.*?)```", response, re.DOTALL)
    if not blocks:
        return None
    code = blocks[-1].split("</code>")[0].replace("```python", "").replace("# YOUR CODE HERE", "")
    return code.split("```")[0].replace("<code>", "").strip() or None


def livecodebench_paper_budget_s(n_tests: int, test_s: float = LCB_PAPER_TEST_S) -> float:
    """The paper's one time budget for all of a problem's tests together: (6 + 1) s per test + 5 s (lcb_run's join);
    tests not finished by then fail."""
    return (test_s + 1) * n_tests + 5


def livecodebench_paper_stdout_ok(stdout: str, expected: str) -> bool:
    """The paper's stdin/stdout comparison: the whole stripped stdout `==` the stripped expected output, less a
    trailing "-" (as prepare_test_input_output_std does)."""
    want = expected.strip()
    if want.endswith("-"):
        want = want[: want.rfind("-")].rstrip()
    return stdout.strip() == want


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


# ------------------------------------------------------------------------------------------------ ifeval

def _ifeval():
    """lm-eval's IFEval module: the official rule checkers, imported from the installed harness, never copied.

    Importing it runs nltk.download('punkt_tab') if nltk cannot find that data; rsft/tasks/ifeval/utils.py points nltk at the saved copy first.
    langdetect (the language checkers) is seeded, so a response gets the same verdict in every run.
    """
    import langdetect
    from lm_eval.tasks.ifeval import utils

    langdetect.DetectorFactory.seed = 0
    return utils


def grade_ifeval(response: str, doc: dict, mode: str = "strict") -> dict:
    """IFEval's checkers, prompt-level (all of a prompt's instructions followed) and instruction-level, strict and
    loose (IFEval's own two readings, whatever the mode). strict: on the text after thinking, stripped; cut-off
    thinking follows nothing. paper: on the paper's think-stripped text (paper_strip_thinking), which is the whole
    reply when thinking never closed."""
    _check_mode(mode)
    n = len(doc["instruction_id_list"])
    if mode == "paper":
        answer = paper_strip_thinking(response)
    else:
        p = parse(response)
        if p.truncated:
            return {"prompt_strict": False, "prompt_loose": False, "inst_strict": [False] * n,
                    "inst_loose": [False] * n}
        answer = p.answer_text.strip()
    u = _ifeval()
    inp = u.InputExample(key=doc["key"], instruction_id_list=list(doc["instruction_id_list"]), prompt=doc["prompt"],
                         kwargs=list(doc["kwargs"]))
    strict = u.test_instruction_following_strict(inp, answer)
    loose = u.test_instruction_following_loose(inp, answer)
    return {"prompt_strict": strict.follow_all_instructions, "prompt_loose": loose.follow_all_instructions,
            "inst_strict": list(strict.follow_instruction_list), "inst_loose": list(loose.follow_instruction_list)}
