"""Where a task's data lives: DATA_DIR/TASK/test.jsonl (one row a line, in the task's own schema)."""
from __future__ import annotations

from pathlib import Path

from rsft.cache import cache_root
from rsft.rundir import read_jsonl, write_jsonl_atomic


def eval_data_dir() -> Path:
    """The kit's default evaluation data folder: $RSFT_CACHE/eval-data."""
    return cache_root() / "eval-data"


def test_file(data_dir: Path, task: str) -> Path:
    return Path(data_dir) / task / "test.jsonl"


def save(data_dir: Path, task: str, rows: list[dict]) -> None:
    """Write a locally made task's rows, unless the file already holds exactly these: a generator changed by an
    update of the kit rewrites its file, so no stale held-out set is evaluated under the new task's name."""
    path = test_file(data_dir, task)
    if path.exists():
        if read_jsonl(path) == rows:  # None when cut short or damaged: rewritten
            return
        print(f"{task}: {path} differs from what this version of the kit generates; rewritten", flush=True)
    write_jsonl_atomic(path, rows)
    print(f"{task}: {len(rows)} rows -> {path}", flush=True)
