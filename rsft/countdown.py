"""Countdown, generated locally: the embedded default's data, in the schema of jasonrqh/Countdown-CoT-20k.

Puzzles come from a seeded procedural generator (numbers, and a target reachable by using each number exactly
once with + - * /). Long chain-of-thought traces are written by a depth-first search solver that narrates what a
reasoning model does: it tries a line of attack, sees that it misses, says "wait" and backtracks, finds a path,
then double-checks it. Every trace is verified with `evaluate_expression` before it is kept.

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


def _reduce_randomly(rng: random.Random, items: list[tuple[int, str]]) -> list[tuple] | None:
    """One random line of attack: combine pairs until one value is left. Returns its steps."""
    items = list(items)
    steps = []
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, ea), (b, eb) = items[i], items[j]
        op = rng.choice(OPS)
        r = _apply(op, a, b)
        if r is None:
            return None
        steps.append((a, op, b, r))
        items = [x for k, x in enumerate(items) if k not in (i, j)] + [(r, f"{_wrap(ea)} {op} {_wrap(eb)}")]
    return steps + [("expr", items[0][1])]


def _solve(items: list[tuple[int, str]], target: int, rng: random.Random, budget: list[int]) -> list | None:
    """Depth-first search over pair combinations; steps of the first solution found, or None."""
    if len(items) == 1:
        return [("expr", items[0][1])] if items[0][0] == target else None
    budget[0] -= 1
    if budget[0] < 0:
        return None
    pairs = [(i, j) for i in range(len(items)) for j in range(len(items)) if i != j]
    rng.shuffle(pairs)
    for i, j in pairs:
        (a, ea), (b, eb) = items[i], items[j]
        for op in OPS:
            r = _apply(op, a, b)
            if r is None or (op in "+*" and i > j):
                continue
            rest = [x for k, x in enumerate(items) if k not in (i, j)] + [(r, f"{_wrap(ea)} {op} {_wrap(eb)}")]
            found = _solve(rest, target, rng, budget)
            if found is not None:
                return [(a, op, b, r)] + found
    return None


def make_puzzle(rng: random.Random) -> tuple[list[int], int]:
    """3 or 4 numbers in 1..50 and a target in 10..200 reached by one random valid expression."""
    while True:
        numbers = [rng.randint(1, 50) for _ in range(rng.choice((3, 4)))]
        steps = _reduce_randomly(rng, [(n, str(n)) for n in numbers])
        if steps is None:
            continue
        target = steps[-2][3]
        if 10 <= target <= 200:
            return numbers, target


# ------------------------------------------------------------------------------------------------ traces


def _narrate(steps: list) -> str:
    parts = [f"{a} {op} {b} = {r}" for a, op, b, r in steps[:-1]]
    return "Let me try " + ", then ".join(parts) + "."


def write_trace(numbers: list[int], target: int, rng: random.Random) -> tuple[str, str] | None:
    """(response, expression): failed attempts with backtracking, the solution, and a verification."""
    items = [(n, str(n)) for n in numbers]
    solution = _solve(items, target, rng, budget=[20000])
    if solution is None:
        return None
    expr = solution[-1][1]
    lines = [f"I need to reach {target} using {numbers}, each number exactly once, with + - * /."]
    wanted, tries = rng.randint(1, 2), 0
    while wanted and tries < 50:  # a few wrong lines of attack before the right one
        tries += 1
        attempt = _reduce_randomly(rng, items)
        if attempt is None or attempt[-2][3] == target:
            continue
        wanted -= 1
        got = attempt[-2][3]
        side = "too big" if got > target else "too small"
        lines.append(f"{_narrate(attempt)} That gives {got}, which is {side} (I need {target}).")
        lines.append(rng.choice(["Wait, that doesn't work.", "Hmm, that's not it.", "That fails."]) +
                     " Let me backtrack and try a different combination.")
    lines.append(f"{_narrate(solution)} That gives {target}, which is the target!")
    lines.append(f"Let me double-check: {expr} = {target}. Numbers used: {sorted(numbers)}, each exactly once. "
                 "Correct.")
    response = "<think>\n" + "\n".join(lines) + "\n</think>\n\n" + (
        f"Combining the numbers step by step: {expr} = {target}, using each of {numbers} exactly once.\n\n"
        f"\\boxed{{{expr}}}"
    )
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
