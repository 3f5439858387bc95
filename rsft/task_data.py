"""Each task's data, prepared by its folder's data.py: `build(data_dir)` makes it locally (generated, or read from an
installed package), `download(data_dir)` fetches it from the Hub (online, once, `evaluate.py --download-data`).

Before a model is loaded, evaluate.py builds what can be built and asks `missing()` which tasks still have no data:
those are skipped with their reason while the model's other tasks run.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from rsft.catalogue import task_names
from rsft.tasks.datafile import test_file


def _module(task: str):
    return importlib.import_module(f"rsft.tasks.{task}.data")


def published_size(task: str) -> int | None:
    """How many questions a downloadable benchmark has (its data.py's QUESTIONS), known before it is downloaded."""
    return getattr(_module(task), "QUESTIONS", None)


def is_local(task: str) -> bool:
    return hasattr(_module(task), "build")


def ensure_local(data_dir: Path, tasks) -> None:
    """Build the data of every locally made task among `tasks` (nothing is downloaded): made again each time
    (about a second) and written only when it differs from the file, e.g. after the kit's generator changed."""
    for task in tasks:
        if is_local(task):
            _module(task).build(Path(data_dir))


def missing(data_dir: Path, tasks) -> dict[str, str]:
    """{task: why it cannot run} for the tasks among `tasks` whose data file is absent."""
    out = {}
    for task in tasks:
        if not test_file(data_dir, task).exists():
            gated = getattr(_module(task), "GATED", None)
            how = f"python evaluate.py --download-data {data_dir}" + (f" ({gated})" if gated else "")
            out[task] = f"no data at {test_file(data_dir, task)}; fetch it once online: {how}"
    return out


def download(data_dir: Path) -> dict[str, str]:
    """Download every Hub benchmark into data_dir; one that fails (gated, offline) is reported and the rest go on.
    Returns {task: why it failed}."""
    failed = {}
    for task in task_names():
        mod = _module(task)
        if not hasattr(mod, "download"):
            continue
        try:
            mod.download(Path(data_dir))
        except Exception as e:  # noqa: BLE001  (each benchmark on its own: one refused download stops no other)
            gated = getattr(mod, "GATED", None)
            failed[task] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}" + (
                f" ({gated})" if gated else "")
            print(f"{task} skipped: {failed[task]}", flush=True)
    return failed
