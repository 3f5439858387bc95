"""Held-out Countdown puzzles for the embedded default's in-domain task (generated locally, never trained on)."""
from __future__ import annotations

from pathlib import Path

from rsft.tasks.datafile import save

ROWS = 200  # a preset's limit takes the first N


def countdown_test_rows(n: int) -> list[dict]:
    """Held-out puzzles: a seed the training data never uses, minus any puzzle of the training generator."""
    from rsft.countdown import make_dataset

    train_keys = {(tuple(sorted(r["answer"]["numbers"])), r["answer"]["target"]) for r in make_dataset(2048, 0)}
    rows = []
    for r in make_dataset(4 * n, seed=10_000):
        key = (tuple(sorted(r["answer"]["numbers"])), r["answer"]["target"])
        if key not in train_keys:
            rows.append({"prompt": r["prompt"], "numbers": r["answer"]["numbers"], "target": r["answer"]["target"]})
        if len(rows) == n:
            break
    return rows


def build(data_dir: Path) -> None:
    save(data_dir, "countdown", countdown_test_rows(ROWS))
