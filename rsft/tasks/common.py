"""Helpers the task folders share: local data, repeats kept for avg@k, per-sample scores, the answer kinds."""
from __future__ import annotations

import json
from pathlib import Path

from rsft.code_grading import extract_code
from rsft.grading import extract_math, extract_number, extract_yes_no, parse
from rsft.tasks.datafile import eval_data_dir, test_file


def load_local(task: str, data_dir: str | None = None, **_ignored) -> dict:
    """{"test": Dataset} from DATA_DIR/<task>/test.jsonl. `data_dir` comes from the TaskManager's metadata
    (evaluate.py --data-dir, or lm-eval's --metadata '{"data_dir": DIR}'); without it, the kit's own data folder.
    A task whose data is made locally (its data.py has `build`) builds it here (rewritten only when it differs), so
    the plain lm-eval CLI needs nothing prepared and never reads a stale file; a Hub benchmark's missing data is
    one error naming the download."""
    import importlib

    import datasets

    from rsft.errors import UserError

    data_dir = Path(data_dir) if data_dir else eval_data_dir()
    path = test_file(data_dir, task)
    maker = importlib.import_module(f"rsft.tasks.{task}.data")
    if hasattr(maker, "build"):  # made locally: (re)written when missing or made by another version of the kit
        maker.build(data_dir)
    elif not path.exists():
        raise UserError(f"task {task}: {path} is missing; fill it once online with: python evaluate.py "
                        f"--download-data {data_dir} (lm-eval's CLI finds another folder with --metadata "
                        f"'{{\"data_dir\": \"DIR\"}}')")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {"test": datasets.Dataset.from_list(rows)}


def keep_all(resps, docs):
    """A filter that keeps every repeat, so process_results sees all k samples (avg@k)."""
    return resps


def answer_kind(process_results) -> str:
    """What a task reads as its answer: the `ANSWER` its utils module states once (boxed when it states none)."""
    import sys

    return getattr(sys.modules.get(getattr(process_results, "__module__", ""), None), "ANSWER", "boxed")


def score_samples(results: list, grade, answer: str = "boxed") -> dict:
    """Mean of grade(response) over a document's k samples, with truncation and no-answer rates.

    `results` is what lm-eval hands process_results: [[r1, ..., rk]] behind the keep_all filter. `answer` names
    what counts as an answer (extract below: boxed, code, yes_no, number, text): the task module's ANSWER.
    """
    responses = results[0] if isinstance(results[0], list) else results
    parsed = [parse(r) for r in responses]
    k = len(responses)
    return {
        "acc": sum(bool(grade(r)) for r in responses) / k,
        "truncated": sum(p.truncated for p in parsed) / k,
        "no_answer": sum((not p.truncated) and extract(answer, r) is None for p, r in zip(parsed, responses)) / k,
    }


def extract(kind: str, response: str) -> str | None:
    """The answer a task reads from a response, by the task's `ANSWER`: boxed (default), math (the box, else a bare
    final answer after a closed </think>), code, yes_no, number, text (the whole reply after thinking). None: no
    answer (cut-off thinking counts as none)."""
    if kind == "math":
        return extract_math(response)
    if kind == "code":
        return extract_code(response)
    if kind == "yes_no":
        return extract_yes_no(response)
    if kind == "number":
        return extract_number(response)
    p = parse(response)
    if kind == "text":
        return None if p.truncated or not p.answer_text.strip() else p.answer_text.strip()
    return p.boxed
