"""The paper's MMLU-Pro 1k subset, built with the procedure of the framework it used.

The paper evaluated `1k_test.parquet` from the lm-eval fork of ReasoningTransfer/Transferability-of-LLM-Reasoning;
that file is not published, but its script is (`eval/lm-evaluation-harness/.../leaderboard/mmlu_pro/process.py`):
from TIGER-Lab/MMLU-Pro's test split, each category sampled in proportion to its share (at least one row,
random_state 42), then 1,000 rows drawn from those with replacement (random_state 42 again), so some questions
appear more than once. The same pandas calls are made here, so the same input rows in
the same order give the same subset; which rows that is depends on the MMLU-Pro revision it is built from.
"""
from __future__ import annotations

SAMPLE_SIZE = 1000  # process.py's sample_size
RANDOM_STATE = 42  # process.py's random_state, for both draws


def build_mmlu_pro_1k(rows: list[dict], sample_size: int = SAMPLE_SIZE) -> list[dict]:
    """process.py's sample_parquet on `rows` (MMLU-Pro test rows, in the split's order, each with `category`)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    if "category" not in df.columns:
        raise ValueError("MMLU-Pro rows must have a 'category' column")
    parts = []
    for category, proportion in df["category"].value_counts(normalize=True).items():
        in_category = df[df["category"] == category]
        n = max(1, int(proportion * sample_size))  # at least one row per category
        parts.append(in_category.sample(n=min(n, len(in_category)), random_state=RANDOM_STATE))
    sampled = pd.concat(parts).sample(n=sample_size, random_state=RANDOM_STATE, replace=True)
    return sampled.to_dict("records")
