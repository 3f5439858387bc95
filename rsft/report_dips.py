"""The report's dip sections: The dip (each benchmark's and each average's worst score after the base and its
recovery, rsft.stats.find_dip) and Two scorings (the preset's against the strict one, and how much of a strict dip
is cut-off thinking the preset's reading still credits)."""
from __future__ import annotations

from pathlib import Path

from rsft.report_format import num, rounded, step_label, write_csv
from rsft.report_page import Page
from rsft.results import IN_AVG, OOD_AVG, Series, average
from rsft.stats import find_dip, floor_or_ceiling


def section_dips(page: Page, series: list[Series], out: Path) -> None:
    page.heading("The dip")
    page.text("For each benchmark: the worst score after the base (the lowest; the highest for a lower-is-better "
              "task), the step where it happens, and the first later step back at or above the base score.")
    csv_rows = []
    for s in series:
        curves = {t: (s.curve(t), s.higher_is_better(t)) for t in s.tasks}
        curves |= {IN_AVG: (average(s, True), True), OOD_AVG: (average(s, False), True)}
        rows = []
        for name, (curve, higher_is_better) in curves.items():
            if not curve:
                continue
            d = find_dip({step: v for step, (v, _) in curve.items()}, higher_is_better)
            percent = name in (IN_AVG, OOD_AVG) or s.unit(name) == "%"
            bound = percent and len(curve) > 1 and floor_or_ceiling({st: v / 100 for st, (v, _) in curve.items()})
            verdict = (f"none can be seen: at {'0' if bound == 'floor' else '100'}% at every step (a {bound})"
                       if bound else d.verdict)
            rows.append([name, num(d.base), num(d.worst), "—" if d.worst_step is None else d.worst_step, verdict])
            csv_rows.append([s.label, name, rounded(d.base), rounded(d.worst), d.worst_step, d.recovered_step, verdict])
        page.heading(s.label, 3)
        page.table(["benchmark", "base", "worst after base", "at step", "recovery"], rows)
    write_csv(out / "dips.csv", ["series", "benchmark", "base", "worst", "worst_step", "recovered_step",
                                 "verdict"], csv_rows)


def scoring_gap_lines(s: Series, task: str) -> list[str]:
    """Where the two scorings part: the strict score's worst dip after the base, and how many of its points are
    answers the preset's reading still credits (replies whose thinking never closed, read whole by the paper)."""
    value, strict = s.curve(task), s.strict_curve(task)
    if 0 not in strict or 0 not in value or not s.higher_is_better(task):
        return []
    d = find_dip({step: v for step, (v, _) in strict.items()}, True)
    if d.worst_step is None or d.base - d.worst <= 0 or d.worst_step not in value:
        return []
    gap = lambda step: value[step][0] - strict[step][0]  # noqa: E731  points the preset's reading adds
    cut = gap(d.worst_step) - gap(0)
    return [f"{task}: of the {d.base - d.worst:.1f}-point dip in the strict score at step {d.worst_step}, "
            f"{cut:.1f} points are answers the {s.preset_name} preset's reading still credits (thinking that never "
            f"closed, read whole), so its own dip there is {value[0][0] - value[d.worst_step][0]:.1f} points."]


def section_scorings(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Two scorings")
    page.text("Every result carries two scores: value, the preset's scoring (the paper's reading of each benchmark: "
              "for math the whole response, thinking included, so a reply cut off mid-thought can still score), and "
              "strict, this kit's reasoning-correct scoring (an answer only after a closed </think>; cut-off = 0). "
              "The gap is what the paper's reading credits to replies that never finished thinking; it is largest "
              "where training makes replies long, so it can hide or deepen a dip.")
    csv_rows = []
    for s in series:
        rows, notes = [], []
        for task in s.tasks:
            strict = s.strict_curve(task)
            for step, (v, se) in s.curve(task).items():
                if step not in strict:
                    continue
                sv, sse = strict[step]
                rows.append([task, step_label(step), num(v, se), num(sv, sse), f"{v - sv:+.1f}"])
                csv_rows.append([s.label, task, step, *map(rounded, (v, se, sv, sse, v - sv))])
            notes += scoring_gap_lines(s, task)
        if not rows:
            continue
        page.heading(s.label, 3)
        for line in notes:
            page.text(line)
        page.table(["benchmark", "step", "value (preset's scoring)", "strict", "value − strict (points)"], rows)
    if not csv_rows:
        page.text("No result here carries a strict score (judge-scored tasks, or results written before it existed).")
    write_csv(out / "scorings.csv", ["series", "task", "step", "value", "stderr", "strict", "strict_stderr",
                                     "value_minus_strict"], csv_rows)
