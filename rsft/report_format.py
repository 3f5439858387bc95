"""How the report writes its numbers: a value with its standard error, a step's label, CSV rounding, a file name's
slug, and the CSV file beside each table."""
from __future__ import annotations

import csv
import re
from pathlib import Path


def num(v: float | None, se: float | None = None) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}" + (f" ± {se:.1f}" if se is not None else "")


def step_label(step: int) -> str:
    return "0 (base)" if step == 0 else str(step)


def rounded(v: float | None, digits: int = 2):
    return "" if v is None else round(v, digits)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
