"""The report's Warnings section: what makes its numbers less than they look. Mixed presets or grader versions,
task versions that differ between runs, missing steps, unjudged or partly judged results, unreadable judge verdicts,
code run outside a sandbox, results that are not numbers or that a grader could not grade, too few questions,
floor or ceiling effects, and runs still below base or still rising at their last checkpoint
(rsft.results.optimization_warnings)."""
from __future__ import annotations

import math

from rsft.report_page import Page
from rsft.results import Result, Series, gaps, groups, optimization_warnings
from rsft.stats import floor_or_ceiling
from rsft.task_result import Judging


def _gap_lines(s: Series) -> list[tuple[list[int], list[str]]]:
    by_steps: dict[tuple, list[str]] = {}
    for task, steps in gaps(s).items():
        by_steps.setdefault(tuple(steps), []).append(task)
    return [(list(steps), tasks) for steps, tasks in by_steps.items()]


def _version_notes(by_group: dict[str, list[Series]]) -> list[str]:
    notes = []
    for name, members in by_group.items():
        for task in sorted({t for s in members for t in s.tasks}):
            versions = {s.label: s.first(task).task_version for s in members if task in s.tasks}
            if len(set(versions.values())) > 1:
                notes.append(f"{task} was scored by different task versions in the {name} group ("
                             + ", ".join(f"{k}: v{v}" for k, v in versions.items()) + "): its curves are not "
                             "comparable; rerun evaluate.py on the older run.")
    return notes


def _judge_notes(series: list[Series], unscored: list[Result]) -> list[str]:
    notes = [f"{r.path}: no value yet (judging not finished); rerun evaluate.py on that run to judge it"
             for r in unscored]
    for s in series:
        for (task, step), r in sorted(s.results.items()):
            judging = r.judging or Judging()
            if judging.complete is False:
                notes.append(f"{s.label}: {task} at step {step} is only partly judged ({judging.unjudged} "
                             f"samples unjudged): its value covers the judged samples only; rerun evaluate.py")
            bad = (judging.unjudged_by_status or {}).get("unparseable", 0)
            if bad and bad >= 0.05 * max(1, (r.n or 0) * (r.k or 1)):
                notes.append(f"{s.label}: {task} at step {step}: the judge's verdict could not be read for {bad} "
                             f"samples (5% or more); its value covers the others only (worst case: "
                             f"{judging.worst_case_value}); check the judge")
    return notes


def _sandbox_notes(s: Series) -> list[str]:
    """Code tasks whose model-written code ran without a kernel boundary (the unsafe opt-in), or unrecorded."""
    notes = []
    for task in s.tasks:
        kinds = {r.sandbox for (t, _), r in s.results.items() if t == task and r.sandbox is not None}
        unsafe = sorted(k for k in kinds if not k or "unsafe" in k)
        if unsafe:
            notes.append(f"{s.label}: {task}'s model-written code ran with sandbox {', '.join(map(repr, unsafe))}: "
                         f"not contained by the kernel (RSFT_UNSAFE_SANDBOX=1); trust these scores only as far as "
                         f"you trust the model")
    return notes


def _grading_notes(s: Series) -> list[str]:
    """Results that are not a number (NaN, an infinity: a damaged file, or a grader's bug) and results some of whose
    samples could not be graded (rsft.tasks.common.guarded: scored 0, each logged with its reason)."""
    notes = []
    for (task, step), r in sorted(s.results.items()):
        bad = {k: x for k, x in (("value", r.value), ("strict", r.strict)) if isinstance(x, float) and
               not math.isfinite(x)}
        if bad:
            notes.append(f"{s.label}: {task} at step {step} has {' and '.join(f'{k} {x}' for k, x in bad.items())}, "
                         f"not a score: delete {r.path} and rerun evaluate.py to redo it")
        share = r.extra_metrics.get("ungradeable")
        if isinstance(share, (int, float)) and share > 0:
            notes.append(f"{s.label}: {task} at step {step}: {100 * share:.1f}% of its samples could not be graded "
                         f"(scored 0; the evaluation log names each reason): a grader fault, not the model's answers")
    return notes


def section_warnings(page: Page, series: list[Series], unscored: list[Result]) -> list[str]:
    by_group = groups(series)
    notes = []
    if len(by_group) > 1:
        notes.append(f"these results come from {len(by_group)} different presets or grader versions "
                     f"({'; '.join(by_group)}); they are never drawn on one figure: each has its own figures.")
    notes += (_version_notes(by_group) + _judge_notes(series, unscored) + _small_n_notes(series)
              + _floor_notes(series))
    for s in series:
        for steps, tasks in _gap_lines(s):
            notes.append(f"{s.label}: no result for {', '.join(tasks)} at steps {', '.join(map(str, steps))} "
                         f"(shown without them); to fill: python evaluate.py {s.run_dir} --preset {s.preset_name} "
                         f"--steps {','.join(map(str, steps))}")
        notes += optimization_warnings(s)
        notes += _sandbox_notes(s) + _grading_notes(s)
    if notes:
        page.heading("Warnings")
        for note in notes:
            page.warning(note)
    return notes


SMALL_N = 30  # fewer questions than this: Wilson's 95% interval at 50% spans over 34 points (n 2: 81, n 30: 34)


def small_n(s: Series) -> dict[str, int]:
    """{task: its smallest n} for the series' tasks scored on fewer than SMALL_N questions (a --limit smoke test)."""
    small: dict[str, int] = {}
    for (task, _), r in s.results.items():
        n = r.n
        if isinstance(n, int) and n < SMALL_N:
            small[task] = min(n, small.get(task, n))
    return small


def _small_n_notes(series: list[Series]) -> list[str]:
    notes = []
    for s in series:
        if small := small_n(s):
            cells = ", ".join(f"{t} n = {n}" for t, n in sorted(small.items()))
            notes.append(f"{s.label}: too few questions for the intervals to mean much ({cells}; under {SMALL_N}, a "
                         f"95% interval at 50% spans over a third of the scale): a smoke test, not a finding; "
                         f"evaluate without --limit for the preset's questions")
    return notes


def _floor_notes(series: list[Series]) -> list[str]:
    notes = []
    for s in series:
        for task in s.tasks:
            if s.unit(task) != "%" or len(s.curve(task)) < 2:
                continue
            bound = floor_or_ceiling({st: v / 100 for st, (v, _) in s.curve(task).items()})
            if bound:
                notes.append(f"{s.label}: {task} is at {'0' if bound == 'floor' else '100'}% at every step (a "
                             f"{bound} effect): no drop or gain can be seen on it, so its 'no dip' says nothing")
    return notes
