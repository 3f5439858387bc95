"""The reasoning-gym tasks (basic_arithmetic, knights_knaves): data generated locally with a fixed seed, prompts with
the math instruction, graded by reasoning-gym's own score_answer (rsft.short_answer_grading.grade_reasoning_gym).

Shared by their task folders through _reasoning_gym_template.yaml; a task's YAML names its dataset in
`dataset_kwargs.dataset`.
"""
from __future__ import annotations

import json
from pathlib import Path

from rsft.errors import UserError
from rsft.short_answer_grading import grade_reasoning_gym
from rsft.prompts import MATH_PROMPT_SUFFIX
from rsft.tasks.common import load_local, per_sample_faults, score_samples
from rsft.tasks.datafile import save

ROWS = 200  # puzzles generated per dataset; a preset's limit takes the first N

# reasoning-gym datasets of the quickstart suite, by task: the generator's config (else its defaults) and seed
DATASETS = {
    # "/" left out: reasoning-gym 0.1.25 computes it as floor division, so some golds are wrong (6 in 500 with it)
    "basic_arithmetic": {"operators": ("+", "-", "*"), "seed": 42},
    "knights_knaves": {"seed": 42},  # 2 inhabitants, statements of depth and width <= 2 (its defaults)
}


def reasoning_gym_rows(task: str, n: int) -> list[dict]:
    """n puzzles of a reasoning-gym dataset, generated locally with the task's fixed seed (the same every run)."""
    try:
        import reasoning_gym
    except ImportError:
        raise UserError("the quickstart suite needs reasoning-gym: pip install -r requirements.txt") from None
    data = reasoning_gym.create_dataset(task, size=n, **DATASETS[task])
    # metadata as JSON text: its nested lists mix types, which a datasets column cannot hold
    return [{"dataset": task, "index": i, "question": e["question"], "answer": e["answer"],
             "metadata": json.dumps(e["metadata"])} for i, e in enumerate(data)]


def build(data_dir: Path, task: str) -> None:
    save(data_dir, task, reasoning_gym_rows(task, ROWS))


def load(dataset: str, **kwargs):
    return load_local(dataset, **kwargs)


def doc_to_text(doc):
    return doc["question"] + MATH_PROMPT_SUFFIX


def doc_to_target(doc):
    return doc["answer"]


@per_sample_faults
def process_results(doc, results):
    """acc and acc_strict alike: the paper ran no reasoning-gym task, so the kit's scoring is the preset's."""
    return score_samples(results, lambda r: grade_reasoning_gym(r, doc))
