"""Countdown, generated locally: the embedded default's data, in the schema of jasonrqh/Countdown-CoT-20k.

Puzzles come from a seeded procedural generator (numbers, and a target reachable by using each number exactly
once with + - * /). Long chain-of-thought traces narrate a depth-first search in a shuffled order, as a reasoning
model searches: each combination tried, too big or too small, "wait, no" and back, until one reaches the target,
then a check. Every trace is verified with `evaluate_expression` before it is kept.

Deviation from the paper: its Countdown-CoT-20k traces were sampled from Qwen3-32B (how the puzzles were made was
not published, PAPER.md section 3). Ours are templated search traces, short enough to train on two CPU cores.
"""
from __future__ import annotations

import ast
import random
from fractions import Fraction

from rsft.prompts import MATH_PROMPT_SUFFIX

MAX_EXPRESSION_CHARS = 200  # longer "answers" are rejected unparsed (hostile model output)
OPS = ("+", "-", "*", "/")


def prompt_for(numbers: list[int], target: int) -> str:
    return (
        f"Using the numbers {numbers}, create an equation that equals {target}. You can use basic arithmetic "
        "operations (+, -, *, /) and each number must be used exactly once." + MATH_PROMPT_SUFFIX
    )


# ------------------------------------------------------------------------------------------------ safe evaluation


def evaluate_expression(expr: str) -> tuple[Fraction, list[int]] | None:
    """Value and the integer literals of an arithmetic expression, or None if it is anything else.

    Parses with `ast` and walks only numbers, + - * /, unary minus and parentheses: nothing is executed, names,
    calls, attributes and powers are rejected, division by zero gives None.
    """
    if not isinstance(expr, str) or len(expr) > MAX_EXPRESSION_CHARS:
        return None
    expr = expr.replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/").replace("×", "*")
    expr = expr.replace("÷", "/").replace("\\left", "").replace("\\right", "")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    literals: list[int] = []

    def walk(node) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            literals.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            a, b = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if b == 0:
                raise ZeroDivisionError
            return a / b
        raise ValueError("not arithmetic")

    try:
        return walk(tree), literals
    except (ValueError, ZeroDivisionError, RecursionError):
        return None


def is_solution(expr: str, numbers: list[int], target: int) -> bool:
    """True when `expr` uses every given number exactly once and equals the target."""
    result = evaluate_expression(expr)
    if result is None:
        return False
    value, literals = result
    return value == target and sorted(literals) == sorted(numbers)


# ------------------------------------------------------------------------------------------------ puzzles

# Difficulty of the embedded puzzles (training rows and held-out test rows alike): sized so that SmolLM2-135M
# learns them in ~70 LoRA steps of 4 rows on 2 CPU cores (bench/RESULTS.md). 4 numbers up to 50 with targets up to 200
# stayed at 0% there; the paper's puzzles (Countdown-CoT-20k) are harder still.
COUNT = 3  # numbers per puzzle
MAX_NUMBER = 20  # each number in 1..MAX_NUMBER
TARGETS = (1, 100)  # target range, inclusive, reached by one random expression over all the numbers
MAX_DEAD_ENDS = 2  # a trace narrates at most this many failed combinations before the solution: ~80-170 tokens
SEARCH_ORDERS = 20  # shuffled search orders tried per puzzle to find one within MAX_DEAD_ENDS


def _apply(op: str, a: int, b: int) -> int | None:
    """Integer-valued, non-negative intermediate results only, as people play Countdown."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a >= b else None
    if op == "*":
        return a * b
    return a // b if b and a % b == 0 else None


def _wrap(expr: str) -> str:
    return expr if expr.isdigit() else f"({expr})"


def _combine(items: list[tuple[int, str]], i: int, j: int, op: str) -> tuple[tuple, list] | None:
    """(step, remaining items) after items[i] op items[j], or None when the step is not allowed."""
    (a, ea), (b, eb) = items[i], items[j]
    r = _apply(op, a, b)
    if r is None:
        return None
    rest = [x for k, x in enumerate(items) if k not in (i, j)] + [(r, f"{_wrap(ea)} {op} {_wrap(eb)}")]
    return (a, op, b, r), rest


def _random_expression(rng: random.Random, numbers: list[int]) -> tuple[int, str] | None:
    """One random line of attack over all the numbers: (value, expression), or None if a step is not allowed."""
    items = [(n, str(n)) for n in numbers]
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        combined = _combine(items, i, j, rng.choice(OPS))
        if combined is None:
            return None
        items = combined[1]
    return items[0]


def _leaves(items: list[tuple[int, str]], rng: random.Random):
    """Depth-first search in a shuffled order: every complete combination as (steps, value, expression)."""
    if len(items) == 1:
        yield [], items[0][0], items[0][1]
        return
    moves = [(i, j, op) for i in range(len(items)) for j in range(len(items)) for op in OPS
             if i != j and not (op in "+*" and i > j)]  # + and * are commutative: one order each
    rng.shuffle(moves)
    for i, j, op in moves:
        combined = _combine(items, i, j, op)
        if combined is None:
            continue
        step, rest = combined
        for steps, value, expr in _leaves(rest, rng):
            yield [step] + steps, value, expr


def make_puzzle(rng: random.Random) -> tuple[list[int], int]:
    """COUNT numbers in 1..MAX_NUMBER and a target in TARGETS reached by one random valid expression."""
    while True:
        numbers = [rng.randint(1, MAX_NUMBER) for _ in range(COUNT)]
        reached = _random_expression(rng, numbers)
        if reached is not None and TARGETS[0] <= reached[0] <= TARGETS[1]:
            return numbers, reached[0]


CHANCE_MAX_NUMBERS = 4  # above this the combinations are too many to count in a report (6 numbers: ~10^7)


def chance(numbers: list[int], target: int) -> float | None:
    """What a random guess solves: the share of the puzzle's complete combinations (every way to combine the
    numbers pair by pair under the traces' rules: + - *, exact division, whole non-negative results; + and * in
    one order) that reach the target. None above CHANCE_MAX_NUMBERS numbers."""
    if not numbers or len(numbers) > CHANCE_MAX_NUMBERS:
        return None
    values = [value for _, value, _ in _leaves([(n, str(n)) for n in numbers], random.Random(0))]
    return sum(v == target for v in values) / len(values) if values else 0.0


# ------------------------------------------------------------------------------------------------ traces


def _narrate(steps: list) -> str:
    return "Try " + ", ".join(f"{a} {op} {b} = {r}" for a, op, b, r in steps)


def _search(numbers: list[int], target: int, rng: random.Random) -> tuple[list, list, str] | None:
    """(dead ends, solution steps, expression) of the first search order that finds the target within
    MAX_DEAD_ENDS failed combinations; None if no order of SEARCH_ORDERS does."""
    items = [(n, str(n)) for n in numbers]
    for _ in range(SEARCH_ORDERS):
        dead_ends = []
        for steps, value, expr in _leaves(items, rng):
            if value == target:
                return dead_ends, steps, expr
            if len(dead_ends) == MAX_DEAD_ENDS:
                break
            dead_ends.append((steps, value))
    return None


def write_trace(numbers: list[int], target: int, rng: random.Random) -> tuple[str, str] | None:
    """(response, expression): the search's failed combinations with backtracking, the solution, a check."""
    found = _search(numbers, target, rng)
    if found is None:
        return None
    dead_ends, solution, expr = found
    lines = [f"I need {target} from {numbers}."]
    for steps, got in dead_ends:
        side = "too big" if got > target else "too small"
        lines.append(f"{_narrate(steps)}: {side}. " + rng.choice(["Wait, no.", "Hmm, no.", "Backtrack."]))
    lines.append(f"{_narrate(solution)}. That reaches the target!")
    lines.append(f"Check: {expr} = {target}. Correct.")
    response = "<think>\n" + "\n".join(lines) + "\n</think>\n\n" + f"\\boxed{{{expr}}}"
    return response, expr


def make_dataset(n: int, seed: int = 0) -> list[dict]:
    """n verified rows in the Countdown-CoT-20k schema (prompt, message, response, answer={numbers, target})."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        numbers, target = make_puzzle(rng)
        key = (tuple(sorted(numbers)), target)
        if key in seen:
            continue
        written = write_trace(numbers, target, rng)
        if written is None:
            continue
        response, expr = written
        if not is_solution(expr, numbers, target):  # every trace verified before it is kept
            raise AssertionError(f"solver produced a wrong expression {expr} for {numbers} -> {target}")
        seen.add(key)
        prompt = prompt_for(numbers, target)
        rows.append({
            "data_source": "countdown-embedded",
            "prompt": prompt,
            "message": [{"role": "user", "content": prompt}],
            "response": response,
            "answer": {"numbers": numbers, "target": target},
        })
    return rows
