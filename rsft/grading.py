"""Reasoning-correct scoring, one module for every task.

The answer is read after the last `</think>`. A response that opened `<think>` and never closed it was cut off
mid-thought (the token budget ran out): it scores 0 and counts as truncated, never graded on its thinking. A
response with no `<think>` at all (a base model at step 0) is graded whole.

Every grader returns within GRADE_TIMEOUT_S on any input: answers are length-capped and scanned in linear time;
math-verify (sympy) runs in a separate worker process with a memory cap that is killed and restarted on timeout
(math-verify's own `signal.alarm` timeouts work only on a main thread, and `9^{9^{9^9}}` can hang sympy).
"""
from __future__ import annotations

import functools
import multiprocessing as mp
import re
import threading
from dataclasses import dataclass

from rsft.countdown import is_solution

GRADER_VERSION = 1  # part of every result; bump when any scoring below changes
GRADE_TIMEOUT_S = 8.0  # hard bound on one math-verify call, worker start included
MAX_ANSWER_CHARS = 2000  # an extracted answer longer than this is not a final answer
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Parsed:
    answer_text: str  # the text after thinking
    truncated: bool  # thinking opened but never closed
    boxed: str | None  # content of the last \boxed{...} in answer_text


def split_thinking(response: str) -> tuple[str, bool]:
    """(text after the last </think>, truncated)."""
    if THINK_CLOSE in response:
        return response.rsplit(THINK_CLOSE, 1)[1], False
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


# ------------------------------------------------------------------------------------------------ math


def _worker_main(conn) -> None:  # runs in the worker process
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # 2 GiB: a runaway sympy dies, we don't
    except (ValueError, OSError):
        pass
    from math_verify import parse as mv_parse
    from math_verify import verify as mv_verify

    while True:
        try:
            gold, pred = conn.recv()
        except EOFError:
            return
        try:
            # gold first: verify(gold, answer) is not symmetric, and the gold side is the trusted one
            ok = bool(mv_verify(mv_parse(gold, parsing_timeout=5), mv_parse(pred, parsing_timeout=5), timeout_seconds=5))
        except BaseException:  # noqa: BLE001  (a MemoryError or a sympy crash is a wrong answer, not a crash)
            ok = False
        conn.send(ok)


class MathVerifier:
    """One math-verify worker process; a call that overruns its timeout kills it and scores 0."""

    def __init__(self, timeout_s: float = GRADE_TIMEOUT_S):
        self.timeout_s = timeout_s
        self._proc = None
        self._conn = None
        self._lock = threading.Lock()
        self.timeouts = 0

    def _start(self) -> None:
        ctx = mp.get_context("spawn")  # no fork of a process that may hold CUDA or threads
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self._proc.start()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(timeout=2)
        self._proc = self._conn = None

    def __call__(self, gold: str, pred: str) -> bool:
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._kill()
                self._start()
            try:
                self._conn.send((gold, pred))
                if self._conn.poll(self.timeout_s):
                    return bool(self._conn.recv())
            except (EOFError, OSError, BrokenPipeError):
                pass
            self.timeouts += 1
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
    return re.sub(r"\s+|\\[,!;: ]|\\left|\\right|\$", "", s).strip(".")


def grade_math(response: str, gold: str) -> bool:
    """Math answer after thinking, checked with math-verify against the gold answer (gold first)."""
    p = parse(response)
    if p.truncated:
        return False
    if p.boxed is not None:
        pred = p.boxed
    else:
        pred = p.answer_text.strip()[-MAX_ANSWER_CHARS:]
    if not pred.strip() or len(pred) > MAX_ANSWER_CHARS:
        return False
    gold = str(gold)
    if _norm(pred) == _norm(gold):  # fast path: no process round-trip for an exact match
        return True
    return _verifier()("\\boxed{" + gold + "}", "\\boxed{" + pred + "}" if p.boxed is not None else pred)


# ------------------------------------------------------------------------------------------------ choice

_ANSWER_IS = re.compile(r"answer is:?\s*\(?\*{0,2}\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE)
_LETTER_ONLY = re.compile(r"^\s*(?:\\text\{|\\textbf\{|\\mathrm\{)?\s*\(?([A-J])\)?\s*\}?\s*$", re.IGNORECASE)


def extract_choice(response: str) -> str | None:
    """The option letter after thinking: the last \\boxed{X}, else the last 'answer is (X)'."""
    p = parse(response)
    if p.truncated:
        return None
    if p.boxed is not None:
        m = _LETTER_ONLY.match(p.boxed)
        if m:
            return m.group(1).upper()
    tail = p.answer_text[-20000:]
    found = _ANSWER_IS.findall(tail)
    return found[-1].upper() if found else None


def grade_choice(response: str, gold: str) -> bool:
    letter = extract_choice(response)
    return letter is not None and letter == str(gold).strip().upper()


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


# ------------------------------------------------------------------------------------------------ yes / no


_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def extract_yes_no(response: str) -> str | None:
    """The last standalone Yes/No (any case) after thinking, lower-cased (HaluEval's judgement)."""
    p = parse(response)
    if p.truncated:
        return None
    found = _YES_NO.findall(p.answer_text[-20000:])
    return found[-1].lower() if found else None


def grade_yes_no(response: str, gold: str) -> bool:
    answer = extract_yes_no(response)
    return answer is not None and answer == str(gold).strip().lower()


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
    import json

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


def grade_ifeval(response: str, doc: dict) -> dict:
    """IFEval's checkers on the text after thinking (stripped, as the paper's code did): prompt-level (all of a
    prompt's instructions followed) and instruction-level, strict and loose. Cut-off thinking follows nothing."""
    p = parse(response)
    n = len(doc["instruction_id_list"])
    if p.truncated:
        return {"prompt_strict": False, "prompt_loose": False, "inst_strict": [False] * n, "inst_loose": [False] * n}
    u = _ifeval()
    inp = u.InputExample(key=doc["key"], instruction_id_list=list(doc["instruction_id_list"]), prompt=doc["prompt"],
                         kwargs=list(doc["kwargs"]))
    answer = p.answer_text.strip()
    strict = u.test_instruction_following_strict(inp, answer)
    loose = u.test_instruction_following_loose(inp, answer)
    return {"prompt_strict": strict.follow_all_instructions, "prompt_loose": loose.follow_all_instructions,
            "inst_strict": list(strict.follow_instruction_list), "inst_loose": list(loose.follow_instruction_list)}
