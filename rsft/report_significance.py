"""The report's Is it real? section: paired bootstraps (rsft.stats.paired_bootstrap) of the dip's step and the
last step against the base, and of runs of one group against each other, over the same questions."""
from __future__ import annotations

from pathlib import Path

from rsft.report_format import rounded, write_csv
from rsft.report_page import Page
from rsft.results import Result, Series, groups
from rsft.stats import find_dip, paired_bootstrap


def _comparisons(series: list[Series]) -> list[tuple[str, str, Result, Result]]:
    """(label, task, a, b) to test b - a: within a series, the dip's step and the last step against the base;
    across the series of one group, each against the first at their last common step."""
    out = []
    for s in series:
        for task in s.tasks:
            curve = {step: v for step, (v, _) in s.curve(task).items()}
            d = find_dip(curve, s.higher_is_better(task))
            steps = dict.fromkeys(([d.worst_step] if d.dipped else []) + [max(curve)])
            out += [(f"{s.label}: step {st} − base", task, s.result(task, 0), s.result(task, st)) for st in steps
                    if st > 0 and 0 in curve]
    for members in groups(series).values():
        for other in members[1:]:
            for task in [t for t in members[0].tasks if t in other.tasks]:
                common = set(members[0].curve(task)) & set(other.curve(task))
                if common:
                    st = max(common)
                    out.append((f"{other.label} − {members[0].label} at step {st}", task,
                                members[0].result(task, st), other.result(task, st)))
    return out


def section_significance(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Is it real? Paired bootstrap")
    page.text("Difference of two evaluations on the same questions, in points, with a 95% paired bootstrap interval "
              "(10,000 resamples of questions; a question's accuracy is the mean over its k samples). An interval "
              "that excludes 0 is a real change at this sample size; one that covers 0 may be noise.")
    rows, csv_rows = [], []
    for label, task, a, b in _comparisons(series):
        ia, ib = a.items(), b.items()
        if ia is None or ib is None or set(ia) != set(ib):
            reading = ("no per-question accuracy (samples file absent, or a judge-scored task)"
                       if ia is None or ib is None else "not the same questions: not paired")
            rows.append([label, task, "—", "—", "—", reading])
            continue
        diff, lo, hi = (100 * x for x in paired_bootstrap(ia, ib))
        reading = "covers 0: may be noise" if lo <= 0 <= hi else "excludes 0: a real difference"
        rows.append([label, task, f"{diff:+.1f}", f"[{lo:+.1f}, {hi:+.1f}]", len(ia), reading])
        csv_rows.append([label, task, rounded(diff), rounded(lo), rounded(hi), len(ia), reading])
    page.table(["comparison", "benchmark", "difference (points)", "95% interval", "questions", "reading"], rows)
    write_csv(out / "significance.csv", ["comparison", "task", "diff_points", "low_points", "high_points",
                                         "questions", "reading"], csv_rows)
