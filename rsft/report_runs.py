"""The report's Runs section: each series' run folder, model, data, preset and steps, with what train.py's
metrics.jsonl says of it (tokens trained, training time, the loss curve)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rsft.plots import Line, Panel, colors, figure
from rsft.report_page import Page
from rsft.results import Series, paper_blocks


@dataclass(frozen=True)
class TrainingLog:
    """What train.py's metrics.jsonl says of a run: the loss per step, and its totals at the last step."""

    losses: dict[int, float]  # step -> loss; steps skipped by the non-finite rule are left out
    tokens: int  # tokens_seen at the last step
    seconds: float  # elapsed_s at the last step: time spent in training steps, not evaluating or saving
    unreadable: int  # lines that are not a step's JSON record (a line torn by a kill)


def training_log(run_dir: Path) -> TrainingLog | None:
    """None for a run folder without metrics.jsonl (results written by evaluate.py --model, or copied)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    records, unreadable = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if isinstance(rec, dict) and {"step", "tokens_seen", "elapsed_s"} <= set(rec):
            records.append(rec)
        else:
            unreadable += 1
    if not records:
        return None
    losses = {r["step"]: r["loss"] for r in records if not r.get("skipped") and type(r.get("loss")) in (int, float)}
    return TrainingLog(losses, records[-1]["tokens_seen"], records[-1]["elapsed_s"], unreadable)


def duration(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{sec:02d}"


def section_runs(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Runs")
    rows, logs = [], {}
    for s in series:
        if s.run_dir not in logs:  # one run, several series (presets): its log is read once
            logs[s.run_dir] = training_log(s.run_dir)
        log = logs[s.run_dir]
        tables = sorted({b["table"] for b in paper_blocks(s.model, s.data)})
        rows.append([s.label, s.run_dir, s.model, s.data, s.preset_name, s.grader_version,
                     ", ".join(map(str, s.steps)), ", ".join(s.tasks), "; ".join(tables) or "none",
                     "—" if log is None else f"{log.tokens:,}", "—" if log is None else duration(log.seconds)])
    page.table(["series", "run folder", "base model", "data", "preset", "grader", "steps", "tasks",
                "paper setting", "tokens trained", "training time (h:mm:ss)"], rows)
    page.text("Tokens and time are metrics.jsonl's last line (tokens_seen, elapsed_s: time in training steps, without "
              "model loading, saving or evaluation); — for a run folder without metrics.jsonl.")
    for run_dir, log in logs.items():
        if log and log.unreadable:
            page.warning(f"{run_dir}/metrics.jsonl: {log.unreadable} unreadable lines skipped (torn by a kill?)")
    lines = [Line(run_dir.name, {st: (v, None) for st, v in log.losses.items()}, c, marker=None)
             for (run_dir, log), c in zip(((d, g) for d, g in logs.items() if g and g.losses), colors(len(logs)))]
    if lines:
        path = figure(out / "loss.png", "Training loss", [Panel("training loss (metrics.jsonl)", "loss", lines,
                                                                  x="linear")], ncols=1)
        page.image(path, "The training loss at every optimizer step, as train.py logged it in metrics.jsonl (steps "
                         "skipped for a non-finite loss are left out).")
