"""Behaviour over training, read from the saved responses: length, reflection/backtracking markers, no answers.

The paper separates *surface verbosity* (long outputs; a weak model imitating the teacher's length) from
*procedural patterns* (self-verification, backtracking that a stronger model internalizes). Length is read
from the evaluation's token counts. Procedure is approximated by counting marker phrases, per 1,000 generated
tokens so that a longer response does not count as more procedural by length alone. The paper itself counts no
keywords (PAPER.md section 5): these markers are this kit's proxy, listed here and nowhere else.

Counting: case-insensitive, whole words, over the whole response (thinking included), non-overlapping matches
of each marker; a phrase can count for two markers only where both match it ("wait, let me check" = 1 wait +
1 let me check). A response counts as *no final answer* when its thinking closed (or never opened) but no
\\boxed{} answer follows, and as *truncated* when its thinking never closed: the same definitions as the
tasks' no_answer and truncated rates (rsft/tasks/common.py). Judge-scored tasks ask for no boxed answer: their
responses count in length, markers and truncation, not in the no-answer share.

Procedure, measured directly on Countdown (`Procedure`): a weak model can copy a trace's surface, writing
"a op b = c" steps and "that reaches the target" after a wrong equation. Two shares read that from the reasoning
(the thinking when the response opens one, else the whole response):
- step accuracy: among the binary steps "a op b = c" written there (+ - * / x ×, whole or decimal numbers; a step
  that continues a longer chain, "1 + 2 + 3 = 6", is not read), the share whose c is right;
- claim truth: among the sentences that say the target is reached ("that/this/which/it reaches/is/equals/gives/
  hits/matches the target"), the share whose steps, written on the same line before the claim, are all right
  and end at the puzzle's target. A claim with no step before it is not true.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable

from rsft.grading import THINK_CLOSE, THINK_OPEN

# name: (kind, pattern). reflection = checking one's own work; backtracking = abandoning a path for another.
MARKERS: dict[str, tuple[str, str]] = {
    "wait": ("reflection", r"\bwait\b"),  # "Wait, that's not right."
    "hmm": ("reflection", r"\bhm+\b"),  # "Hmm", "Hmmm", "hm"
    "let me check": ("reflection", r"\blet me (?:re-?)?(?:check|verify)\b"),  # also "let me verify/recheck"
    "double-check": ("reflection", r"\bdouble[- ]?check"),  # "double-check", "double check", "double-checking"
    "alternatively": ("backtracking", r"\balternatively\b"),  # "Alternatively, maybe ..."
    # retrying a step: "try again", "try another/a different ...", "start over", "redo", "recalculate/recompute"
    "retry": ("backtracking", r"\b(?:try(?:ing)? (?:again|another|a different)|start(?:ing)? over"
                              r"|re-?do(?:ing)?|re-?calculat\w*|re-?comput\w*)\b"),
}
KINDS = ("reflection", "backtracking")
_COMPILED = {name: re.compile(pattern, re.IGNORECASE) for name, (_, pattern) in MARKERS.items()}


def count_markers(text: str) -> dict[str, int]:
    """{marker: occurrences in text} for every marker in MARKERS."""
    return {name: len(rx.findall(text)) for name, rx in _COMPILED.items()}


@dataclass
class Behaviour:
    """Totals over a set of responses; rates are pooled (sum of markers / sum of tokens), not averaged."""

    responses: int = 0
    tokens: int = 0
    truncated: int = 0
    expects_answer: int = 0  # responses of tasks that ask for a final \boxed{} answer (not judge-scored ones)
    no_answer: int = 0
    markers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MARKERS, 0))

    def add(self, sample: dict, expects_answer: bool = True) -> None:
        """One line of a TASK.samples.jsonl file."""
        self.responses += 1
        self.tokens += sample["tokens"]
        self.truncated += bool(sample["truncated"])
        self.expects_answer += expects_answer
        self.no_answer += expects_answer and not sample["truncated"] and sample["extracted"] is None
        for name, n in count_markers(sample["response"]).items():
            self.markers[name] += n

    def merge(self, other: Behaviour) -> Behaviour:
        return Behaviour(self.responses + other.responses, self.tokens + other.tokens,
                         self.truncated + other.truncated, self.expects_answer + other.expects_answer,
                         self.no_answer + other.no_answer, {m: self.markers[m] + other.markers[m] for m in MARKERS})

    def per_1k(self, name: str) -> float:
        """Occurrences of a marker (or of every marker of a kind) per 1,000 generated tokens."""
        names = [m for m, (kind, _) in MARKERS.items() if kind == name] if name in KINDS else [name]
        return 1000 * sum(self.markers[m] for m in names) / max(1, self.tokens)

    @property
    def mean_tokens(self) -> float:
        return self.tokens / max(1, self.responses)

    @property
    def truncated_share(self) -> float:
        return self.truncated / max(1, self.responses)

    @property
    def no_answer_share(self) -> float | None:
        """Among responses that were asked for a final answer; None when none was."""
        return self.no_answer / self.expects_answer if self.expects_answer else None


def summarize(samples: Iterable[dict], expects_answer: bool = True) -> Behaviour:
    b = Behaviour()
    for s in samples:
        b.add(s, expects_answer)
    return b


# ------------------------------------------------------------------------------------------------ Countdown procedure

_NUM = r"\d+(?:\.\d+)?"
_STEP = re.compile(rf"(?<!\d)(?<!\d\.)({_NUM})\s*([-+*/×x])\s*({_NUM})\s*=\s*({_NUM})(?!\.?\d)")
_CLAIM = re.compile(r"\b(?:that|this|which|it)\s+(?:reaches|is|equals|gives|hits|matches)\s+(?:the\s+)?target\b",
                    re.IGNORECASE)
_CHAIN_BEFORE = re.compile(r"[-+*/×x(]\s*$")  # an operand just before the step: it continues a longer chain


def reasoning_text(response: str) -> str:
    """The thinking (to its end or to the end of a cut-off response) when the response opens one, else all of it."""
    if THINK_OPEN not in response:
        return response
    return response.split(THINK_OPEN, 1)[1].split(THINK_CLOSE, 1)[0]


def arithmetic_steps(text: str) -> list[tuple[bool, Fraction]]:
    """(correct?, stated result) of each binary step "a op b = c" in text, in order."""
    out = []
    for m in _STEP.finditer(text):
        if _CHAIN_BEFORE.search(text[max(0, m.start() - 3) : m.start()]):
            continue
        a, op, b, c = Fraction(m[1]), m[2], Fraction(m[3]), Fraction(m[4])
        if op == "+":
            value = a + b
        elif op == "-":
            value = a - b
        elif op == "/":
            value = a / b if b else None
        else:
            value = a * b
        out.append((value == c, c))
    return out


@dataclass
class Procedure:
    """Countdown procedure over a set of responses: arithmetic steps right, "reaches the target" claims true."""

    responses: int = 0
    steps: int = 0
    correct_steps: int = 0
    claims: int = 0
    true_claims: int = 0

    def add(self, response: str, target: int) -> None:
        self.responses += 1
        reasoning = reasoning_text(response)
        steps = arithmetic_steps(reasoning)
        self.steps += len(steps)
        self.correct_steps += sum(ok for ok, _ in steps)
        for m in _CLAIM.finditer(reasoning):
            line = reasoning[reasoning.rfind("\n", 0, m.start()) + 1 : m.start()]
            before = arithmetic_steps(line)
            self.claims += 1
            self.true_claims += bool(before) and all(ok for ok, _ in before) and before[-1][1] == target

    @property
    def step_accuracy(self) -> float | None:
        """Share of arithmetic steps that are right; None when no step was written."""
        return self.correct_steps / self.steps if self.steps else None

    @property
    def claim_truth(self) -> float | None:
        """Share of "reaches the target" claims that are true; None when no claim was made."""
        return self.true_claims / self.claims if self.claims else None


_TARGET_IN_PROMPT = re.compile(r"create an equation that equals (\d+)")  # rsft.countdown.prompt_for


def countdown_procedure(samples: Iterable[dict]) -> Procedure:
    """Procedure over lines of a countdown TASK.samples.jsonl; the target is read from each sample's prompt."""
    p = Procedure()
    for s in samples:
        m = _TARGET_IN_PROMPT.search(s["prompt"])
        if m is None:
            raise ValueError(f"not a Countdown prompt (no 'create an equation that equals N'): {s['prompt'][:80]!r}")
        p.add(s["response"], int(m[1]))
    return p


# ------------------------------------------------------------------------------------------------ surface and substance
# The weak-model story in two numbers per step (the paper: a weaker base copies the surface of long-CoT traces, a
# stronger one learns the procedure): the share of Countdown replies in the traces' form, and how far the score
# is above what a random guess solves.


def countdown_form(response: str, numbers: list[int]) -> bool:
    """A reply in the form of the training traces: its thinking closed, then a boxed equation that uses exactly
    the puzzle's numbers, each once, whatever it equals (rsft.countdown.evaluate_expression reads it)."""
    from rsft.countdown import evaluate_expression
    from rsft.short_answer_grading import extract_countdown

    expr = extract_countdown(response)
    if expr is None or THINK_CLOSE not in response:
        return False
    read = evaluate_expression(expr)
    return read is not None and sorted(read[1]) == sorted(numbers)


def puzzle_of(doc) -> tuple[tuple[int, ...], int] | None:
    """(numbers, target) of a Countdown sample's doc (rsft/tasks/countdown), None when it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("numbers"), list):
        return None
    numbers, target = doc["numbers"], doc.get("target")
    if not all(type(n) is int for n in numbers) or type(target) is not int:
        return None
    return tuple(numbers), target


def form_share(samples: list[dict]) -> float | None:
    """The share of Countdown samples (lines of countdown.samples.jsonl) in the traces' form (countdown_form);
    None when a sample is not a Countdown puzzle's."""
    puzzles = [puzzle_of(s.get("doc")) for s in samples]
    if not samples or None in puzzles:
        return None
    return sum(countdown_form(s["response"], list(p[0])) for s, p in zip(samples, puzzles)) / len(samples)


def guess_pairs(samples: list[dict]) -> tuple[dict, dict] | None:
    """({question: a random guess's chance}, {question: the model's score}) over the Countdown samples, for a
    paired bootstrap of score minus guess (rsft.stats.stratified_bootstrap); None when a sample is not a Countdown
    puzzle's, has no per-question score, or has too many numbers to count the guesses (rsft.countdown.chance)."""
    from rsft.countdown import chance

    guess, score = {}, {}
    for s in samples:
        puzzle = puzzle_of(s.get("doc"))
        if puzzle is None or not isinstance(s.get("doc_acc"), (int, float)):
            return None
        rate = chance(list(puzzle[0]), puzzle[1])
        if rate is None:
            return None
        guess[s["doc_id"]], score[s["doc_id"]] = rate, float(s["doc_acc"])
    return (guess, score) if guess else None
