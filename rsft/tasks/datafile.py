"""Where a task's data lives: DATA_DIR/TASK/test.jsonl (one row a line, in the task's own schema)."""
from __future__ import annotations

from pathlib import Path

from rsft.rundir import write_jsonl_atomic


def test_file(data_dir: Path, task: str) -> Path:
    return Path(data_dir) / task / "test.jsonl"


def save(data_dir: Path, task: str, rows: list[dict]) -> None:
    path = test_file(data_dir, task)
    write_jsonl_atomic(path, rows)
    print(f"{task}: {len(rows)} rows -> {path}", flush=True)
