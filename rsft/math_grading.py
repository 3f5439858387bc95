"""Math answers (MATH500, AIME24): math-verify against the gold answer, the strict reading after thinking (a boxed
answer, a bare final line, an anchored "answer"), the paper's over the whole reply.

Every call returns within GRADE_TIMEOUT_S on any input (plus WORKER_START_S when the worker must start): answers are
length-capped and scanned in linear time; math-verify (sympy) runs in a worker process (`python -m
rsft._verify_worker`) with a memory cap, killed and restarted when a call overruns (math-verify's own `signal.alarm`
timeouts work only on a main thread, and `9^{9^{9^9}}` can hang sympy). The worker is started by module, so grading
works from any script, thread or notebook; a worker that cannot start raises an error instead of scoring anything.
"""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rsft.errors import UserError
from rsft.grading import MAX_ANSWER_CHARS, THINK_CLOSE, check_mode, parse


GRADE_TIMEOUT_S = 8.0  # hard bound on one math-verify call (math-verify's own limits are 5 s for parse and verify)
WORKER_START_S = 60.0  # bound on the worker's start (importing sympy takes 1-3 s, longer on a loaded machine)
MAX_REGION_CHARS = 20_000  # strict math reads at most the last 20k characters of the reply after thinking


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
    check_mode(mode)
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
