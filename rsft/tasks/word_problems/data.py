"""word_problems: one-step addition and subtraction word problems with small whole numbers, generated locally.

Out-of-domain for the embedded default: arithmetic asked in words, not an equation over given numbers. Sized so
that SmolLM2-135M-Instruct answers a good share before training (sums and differences up to 20, two phrasings
each; at step 0 34% greedy, 28% sampled: bench/RESULTS.md), so that a drop or a gain can be seen. Seeded: the
same rows everywhere.
"""
from __future__ import annotations

import random
from pathlib import Path

from rsft.tasks.datafile import save

ROWS = 200  # written; a preset's limit takes the first N
SEED = 7

NAMES = ("Sam", "Lily", "Omar", "Mia", "Ben", "Ava", "Leo", "Zoe", "Noah", "Emma", "Ravi", "Chen")
THINGS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "shells", "stamps", "cards", "coins")
ADD = ("{n} has {a} {t} and gets {b} more. How many {t} does {n} have now?",
       "{n} had {a} {t}. A friend gave {n} {b} more. How many {t} does {n} have?")
SUB = ("{n} has {a} {t} and gives away {b}. How many {t} does {n} have left?",
       "{n} had {a} {t} and lost {b}. How many {t} does {n} have left?")


def _problem(rng: random.Random) -> tuple[str, int]:
    n, t = rng.choice(NAMES), rng.choice(THINGS)
    if rng.random() < 0.5:
        a, b = rng.randint(2, 10), rng.randint(2, 10)
        return rng.choice(ADD).format(n=n, t=t, a=a, b=b), a + b
    a = rng.randint(5, 15)
    b = rng.randint(1, a - 1)
    return rng.choice(SUB).format(n=n, t=t, a=a, b=b), a - b


def make_rows(n: int = ROWS, seed: int = SEED) -> list[dict]:
    """n distinct problems: {"question", "answer" (a whole number as text)}."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        question, answer = _problem(rng)
        if question not in seen:
            seen.add(question)
            rows.append({"question": question, "answer": str(answer)})
    return rows


def build(data_dir: Path) -> None:
    save(data_dir, "word_problems", make_rows())
