"""word_problems: one- and two-step arithmetic word problems with whole-number answers, generated locally.

Out-of-domain for the embedded default: everyday arithmetic in words, not an equation over given numbers. Small
numbers (two-digit sums, one-digit factors), so that SmolLM2-135M-Instruct can answer some of them before training
and a drop or a gain can be seen. Seeded: the same rows on every machine.
"""
from __future__ import annotations

import random
from pathlib import Path

from rsft.tasks.datafile import save

ROWS = 200  # written; a preset's limit takes the first N
SEED = 7

NAMES = ("Sam", "Lily", "Omar", "Mia", "Ben", "Ava", "Leo", "Zoe", "Noah", "Emma", "Ravi", "Chen")
THINGS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "shells", "stamps", "cards", "coins")


def _one_step(rng: random.Random, name: str, thing: str) -> tuple[str, int]:
    kind = rng.choice(("add", "sub", "mul", "div"))
    if kind == "add":
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        return f"{name} has {a} {thing}. {name} gets {b} more. How many {thing} does {name} have now?", a + b
    if kind == "sub":
        a = rng.randint(10, 40)
        b = rng.randint(1, a - 1)
        return f"{name} has {a} {thing} and gives away {b}. How many {thing} does {name} have left?", a - b
    if kind == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return f"{name} has {a} bags with {b} {thing} in each bag. How many {thing} does {name} have?", a * b
    b, q = rng.randint(2, 9), rng.randint(2, 9)
    return (f"{name} shares {b * q} {thing} equally among {b} friends. How many {thing} does each friend get?", q)


def _two_step(rng: random.Random, name: str, thing: str) -> tuple[str, int]:
    kind = rng.choice(("add_sub", "mul_add", "sub_sub"))
    if kind == "add_sub":
        a, b = rng.randint(5, 30), rng.randint(2, 20)
        c = rng.randint(1, a + b - 1)
        return (f"{name} has {a} {thing}, buys {b} more, then gives {c} to a friend. "
                f"How many {thing} does {name} have now?", a + b - c)
    if kind == "mul_add":
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 20)
        return (f"{name} has {a} boxes with {b} {thing} in each box, and {c} loose {thing}. "
                f"How many {thing} does {name} have in all?", a * b + c)
    a = rng.randint(20, 50)
    b = rng.randint(1, a // 2)
    c = rng.randint(1, a - b - 1)
    return (f"{name} has {a} {thing}, loses {b}, and then gives away {c}. How many {thing} are left?", a - b - c)


def make_rows(n: int = ROWS, seed: int = SEED) -> list[dict]:
    """n distinct problems, half one-step and half two-step: {"question", "answer" (a whole number as text)}."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        make = _one_step if len(rows) % 2 == 0 else _two_step
        question, answer = make(rng, rng.choice(NAMES), rng.choice(THINGS))
        if question not in seen:
            seen.add(question)
            rows.append({"question": question, "answer": str(answer)})
    return rows


def build(data_dir: Path) -> None:
    save(data_dir, "word_problems", make_rows())
