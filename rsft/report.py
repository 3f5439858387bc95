"""The report of evaluated runs: one page of sections in this order, each a table (also written as CSV) and its
figures, each section in a module of its own:

    rsft/report_headline.py      What happened: the headline in words, with paired-bootstrap intervals, and the
                                 change-from-base figure
    rsft/report_warnings.py      Warnings: mixed presets or grader versions, missing steps, unjudged results, floor
                                 or ceiling effects, under-optimized runs
    rsft/report_runs.py          Runs, with metrics.jsonl's tokens, time and loss
    rsft/report_scores.py        Scores: each cell with n and a 95% interval; the score figures
    rsft/report_dips.py          The dip, and Two scorings (the preset's and the strict one)
    rsft/report_behaviour.py     Length and behaviour, and the Countdown procedure
    rsft/report_paper.py         The paper side by side
    rsft/report_significance.py  Is it real? Paired bootstraps

The numbers come from rsft/results.py (the result files as series) and rsft/stats.py (intervals, bootstraps, the
dip), the markers from rsft/behaviour.py, the figures from rsft/plots.py; rsft/report_format.py writes the cells and
CSV files, and rsft/report_page.py renders the page as Markdown and as one self-contained HTML file.
"""
from __future__ import annotations

from pathlib import Path

from rsft.report_behaviour import section_behaviour
from rsft.report_dips import section_dips, section_scorings
from rsft.report_headline import section_headline
from rsft.report_page import Page
from rsft.report_paper import section_paper
from rsft.report_runs import section_runs
from rsft.report_scores import section_scores
from rsft.report_significance import section_significance
from rsft.report_warnings import section_warnings
from rsft.results import load_series


def write_report(run_dirs: list[Path], out: Path) -> tuple[Path, list[str]]:
    """Every section, as report.md (PNG and CSV files beside it) and one self-contained report.html.
    Returns the HTML page's path and the report's warnings."""
    series, unscored = load_series(run_dirs)
    out.mkdir(parents=True, exist_ok=True)
    page = Page("Report: " + ", ".join(str(d) for d in run_dirs))
    section_headline(page, series, out)
    warnings = section_warnings(page, series, unscored)
    section_runs(page, series, out)
    section_scores(page, series, out)
    section_dips(page, series, out)
    section_scorings(page, series, out)
    section_behaviour(page, series, out)
    section_paper(page, series, out)
    section_significance(page, series, out)
    page.heading("Files")
    page.text("Tables as CSV: scores.csv, dips.csv, scorings.csv, behaviour.csv, procedure.csv (Countdown runs), "
              "paper.csv, significance.csv; figures as PNG (change_*.png: the change from the base; loss.png: the "
              "training loss, for runs with a metrics.jsonl); "
              "this page as report.md and report.html (self-contained).")
    (out / "report.md").write_text(page.markdown())
    (out / "report.html").write_text(page.html())
    return out / "report.html", warnings
