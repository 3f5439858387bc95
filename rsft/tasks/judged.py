"""The judge-scored tasks' shared pieces (their YAMLs include _judged_template.yaml, which names these): the
task's data by its `dataset_kwargs.dataset`, and phase 1's process_results: the truncation rate only (the judging
phase, rsft.judges, scores the rest)."""
from rsft.grading import split_thinking
from rsft.tasks.common import load_local


def load(dataset: str, **kwargs):
    return load_local(dataset, **kwargs)


def process_results(doc, results) -> dict:
    responses = results[0] if isinstance(results[0], list) else results
    return {"truncated": sum(split_thinking(r)[1] for r in responses) / len(responses)}
