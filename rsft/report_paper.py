"""The report's The paper side by side section: each run's scores next to the paper's published ones (the
matching setting of rsft/paper_results.yaml), with paper.csv."""
from __future__ import annotations

from pathlib import Path

from rsft.report_format import num, rounded, step_label, write_csv
from rsft.report_page import Page
from rsft.results import Series, paper_blocks, paper_data, paper_points


def section_paper(page: Page, series: list[Series], out: Path) -> None:
    page.heading("The paper side by side")
    csv_rows = []
    matched = [s for s in series if paper_blocks(s.model, s.data)]
    for s in matched:
        page.heading(s.label, 3)
        if s.preset_name != "paper":
            page.text(f"This run used the {s.preset_name} preset, not the paper's protocol (32,768 new tokens, the "
                      f"paper's k, whole benchmarks): part of every difference is the protocol.")
        rows = []
        points = paper_points(s.model, s.data)
        for (task, step), (value, source) in sorted((kv for kv in points.items() if kv[0][0] in s.tasks),
                                                    key=lambda kv: (s.tasks.index(kv[0][0]), kv[0][1])):
            if step not in s.curve(task):
                continue
            v, se = s.curve(task)[step]
            rows.append([task, step_label(step), f"{value:.1f}", num(v, se), f"{v - value:+.1f}", source])
            csv_rows.append([s.label, task, step, value, rounded(v), rounded(se), rounded(v - value), source])
        if rows:
            page.table(["benchmark", "step", "paper", "this run (value: the paper's reading)", "run − paper (points)",
                        "paper source"], rows)
        else:
            page.text("The paper has this setting, but this run has no result at the paper's steps and tasks.")
    if not matched:
        settings = sorted({f"{b['model']} + {b['data']}" for b in paper_data()["blocks"] if b["data"] != "any"})
        page.text("No run matches a setting of the paper (same base model and dataset). Settings with published "
                  "numbers (rsft/paper_results.yaml): " + "; ".join(settings) + ".")
    write_csv(out / "paper.csv", ["series", "task", "step", "paper", "run", "run_stderr", "run_minus_paper",
                                  "paper_source"], csv_rows)
