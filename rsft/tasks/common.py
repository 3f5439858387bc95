"""Helpers the task folders share: local data, repeats kept for avg@k, per-sample scores, the answer kinds."""
from __future__ import annotations

import functools
import json
import logging
import threading
from pathlib import Path

from rsft.code_grading import extract_code
from rsft.grading import parse
from rsft.math_grading import extract_math
from rsft.short_answer_grading import extract_number, extract_yes_no
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
    if path.exists() and not path.is_file():  # a FIFO would block forever, /dev/zero fill the memory
        raise UserError(f"task {task}: {path} is not a regular file (a folder, FIFO or device); replace it with the "
                        f"task's test.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {"test": datasets.Dataset.from_list(rows)}


def keep_all(resps, docs):
    """A filter that keeps every repeat, so process_results sees all k samples (avg@k)."""
    return resps


def answer_kind(task) -> str:
    """What a task reads as its answer: the `ANSWER` its utils module states once (boxed when it states none, or
    when it has no utils module: the reasoning-gym and judged tasks are served by a shared template module).

    `task`: the task's name (evaluate.py, before lm-eval loads anything), or the process_results lm-eval loaded for
    it (the worker), whose module is that utils module."""
    import importlib
    import sys

    if not isinstance(task, str):
        return getattr(sys.modules.get(getattr(task, "__module__", ""), None), "ANSWER", "boxed")
    try:
        return getattr(importlib.import_module(f"rsft.tasks.{task}.utils"), "ANSWER", "boxed")
    except ModuleNotFoundError as e:
        if e.name not in (f"rsft.tasks.{task}", f"rsft.tasks.{task}.utils"):
            raise  # the task's own module is there, and something it imports is not: not a boxed task
        return "boxed"


log = logging.getLogger("rsft.grading")
_failed = threading.local()  # .samples: indices of the document's samples whose grading raised (per_sample_faults)


class Ungradeable:
    """A sample whose grading raised: it scores 0, counts in the task's `ungradeable` rate, its reason is logged."""

    def __init__(self, reason: str):
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Ungradeable({self.reason!r})"


def guarded(grade):
    """grade(...) that returns Ungradeable(reason) instead of raising (a RecursionError on a reply nested 5,000
    deep, a sandbox that could not start, a grader's bug): one reply never sinks a checkpoint's results."""

    @functools.wraps(grade)
    def safe(*args, **kwargs):
        try:
            return grade(*args, **kwargs)
        except Exception as e:  # noqa: BLE001  (KeyboardInterrupt and SystemExit still stop the evaluation)
            reason = f"{type(e).__name__}: {str(e)[:300]}"
            log.warning("a sample could not be graded (counted in ungradeable, scored 0): %s", reason)
            return Ungradeable(reason)

    return safe


def per_sample_faults(process_results):
    """Wraps a task's process_results: it gets an `ungradeable` rate (samples whose grading raised, each logged
    with its reason by `guarded`), and an exception outside score_samples marks the document's samples ungradeable
    (scored 0) instead of ending lm-eval's run, which writes no task of the checkpoint when one process_results
    raises."""

    @functools.wraps(process_results)
    def wrapper(doc, results):
        responses = results[0] if isinstance(results[0], list) else results
        _failed.samples = set()
        try:
            out = process_results(doc, results)
        except Exception as e:  # noqa: BLE001
            log.warning("a document's %d samples could not be graded (counted in ungradeable, scored 0): %s: %s",
                        len(responses), type(e).__name__, str(e)[:300])
            return {"acc": 0.0, "acc_strict": 0.0, "ungradeable": 1.0}
        finally:
            failed, _failed.samples = _failed.samples, None
        out["ungradeable"] = len(failed) / max(1, len(responses))
        return out

    return wrapper


def score_samples(results: list, grade, paper=None, answer: str = "boxed") -> dict:
    """A document's k samples scored both ways, with truncation, no-answer and ungradeable rates.

    `grade(response)` is the kit's reasoning-correct reading (an answer only after a closed </think>): its mean over
    the samples is `acc_strict`. `paper(response)`, where the paper's scorer reads replies otherwise, is the
    preset's reading: its mean is `acc`; without one, `acc` is `acc_strict` (a task the paper never scored).
    `results` is what lm-eval hands process_results: [[r1, ..., rk]] behind the keep_all filter. `answer` names
    what counts as an answer (extract below: boxed, code, yes_no, number, text): the task module's ANSWER. A grade
    that raises, or returns Ungradeable, scores 0 and counts as ungradeable (see guarded), in either reading.
    """
    responses = results[0] if isinstance(results[0], list) else results
    parsed = [parse(r) for r in responses]
    k = len(responses)
    readings = [[guarded(g)(r) for r in responses] for g in (grade, paper) if g is not None]
    failed = {i for verdicts in readings for i, v in enumerate(verdicts) if isinstance(v, Ungradeable)}
    if getattr(_failed, "samples", None) is not None:
        _failed.samples |= failed
    strict, preset = readings[0], readings[-1]
    return {
        "acc": sum(bool(v) for v in preset) / k,
        "acc_strict": sum(bool(v) for v in strict) / k,
        "truncated": sum(p.truncated for p in parsed) / k,
        "no_answer": sum((not p.truncated) and extract(answer, r) is None for p, r in zip(parsed, responses)) / k,
        "ungradeable": len(failed) / k,
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
