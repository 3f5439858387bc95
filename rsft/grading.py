"""How every grader reads a reply: the thinking split off, the last \\boxed{}, the two scorings. Text in, score out.

`strict` (the kit's reasoning-correct scoring): the answer is read after the last `</think>`. A response that opened
`<think>` and never closed it was cut off mid-thought (the token budget ran out): it scores 0 and counts as
truncated, never graded on its thinking. A response with no `<think>` at all (a base model at step 0) is graded whole.

`paper`: the paper's released code, character for character (github Nebularaid2000/rethink_sft_generalization
@ 3378e2b; GPQA and LiveCodeBench @ 4a20109), which mostly reads the whole response, thinking included, so a reply
whose thinking never closed can still score: math-verify over the whole response (math_eval_budget.py), MMLU-Pro's
first regex match (its lm-eval template), GPQA's last box (evalchemy testing_utils.py), HaluEval's and IFEval's
think-stripping regexes (their lm-eval utils.py), LiveCodeBench's last python block (evalchemy eval_instruct.py).
Tasks the paper did not run (Countdown, reasoning-gym, HumanEval) have the strict scoring only.

Where each kind of answer is graded, the paper's reading and the strict one side by side, so that a change to one is
made in sight of the other: math (math-verify) in rsft/math_grading.py; option letters (GPQA-Diamond, MMLU-Pro) in
rsft/choice_grading.py; whole numbers (word problems), Yes/No (HaluEval), Countdown and reasoning-gym answers in
rsft/short_answer_grading.py; IFEval's instructions in rsft/instruction_grading.py; code (LiveCodeBench, HumanEval)
in rsft/code_grading.py. Every grader returns in bounded time on any input: answers are length-capped and scanned in
linear time, and math-verify runs in a worker process it can kill (rsft/math_grading.py).
"""
from __future__ import annotations

from dataclasses import dataclass

GRADER_VERSION = 3  # part of every result; bump when any scoring changes (here or in a grader named above)
MAX_ANSWER_CHARS = 2000  # an extracted answer longer than this is not a final answer
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


def check_mode(mode: str) -> None:
    """A scoring mode the graders know (MODES), or a ValueError naming them."""
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
