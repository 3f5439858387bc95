"""The report of evaluated runs: one page of sections, each a table (also written as CSV) and its figures.

Sections: warnings (mixed presets or grader versions, missing steps, unjudged results, under-optimized runs),
runs, scores, the dip, length and behaviour, the paper side by side, paired bootstraps. The numbers come from
rsft/results.py, the markers from rsft/behaviour.py, the figures from rsft/plots.py; rsft/report_page.py renders
the page as Markdown and as one self-contained HTML file.

One module of ~440 lines on purpose: the report's sections, in page order; the numbers come from rsft/results.py,
the rendering from rsft/report_page.py and rsft/plots.py.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from rsft.behaviour import KINDS, MARKERS, Behaviour, countdown_procedure
from rsft.plots import Line, Panel, colors, figure
from rsft.report_page import Page
from rsft.stats import floor_or_ceiling, headline
from rsft.results import (IN_AVG, OOD_AVG, Result, Series, average, find_dip, gaps, groups, load_series,
                          optimization_warnings, paired_bootstrap, paper_blocks, paper_data, paper_points,
                          short_name)

INTRO = ("Scores are percent (the result files hold fractions), ± one standard error over questions as lm-eval "
         "reports it (a metric with its own unit, such as a reward model's mean score, is shown as it is). Step 0 "
         "is the base model. The in-domain and out-of-domain averages are means over the higher-is-better "
         "reasoning percentages of each domain, at the steps where every one of them has a result; general-capability "
         "tasks (IFEval, HaluEval, TruthfulQA, AlpacaEval: the paper's own group), lower-is-better tasks (an "
         "attack-success rate) and raw-unit tasks have their own table and enter no average.")

# ------------------------------------------------------------------------------------------------ formatting


def num(v: float | None, se: float | None = None) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}" + (f" ± {se:.1f}" if se is not None else "")


def step_label(step: int) -> str:
    return "0 (base)" if step == 0 else str(step)


def _r(v: float | None, digits: int = 2):
    return "" if v is None else round(v, digits)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _column(s: Series, task: str) -> str:
    notes = [n for n in (s.unit(task) if s.unit(task) != "%" else "",
                         "" if s.higher_is_better(task) else "lower is better") if n]
    return f"{task} ({', '.join(notes)})" if notes else task


# ------------------------------------------------------------------------------------------------ warnings


def _gap_lines(s: Series) -> list[tuple[list[int], list[str]]]:
    by_steps: dict[tuple, list[str]] = {}
    for task, steps in gaps(s).items():
        by_steps.setdefault(tuple(steps), []).append(task)
    return [(list(steps), tasks) for steps, tasks in by_steps.items()]


def _version_notes(by_group: dict[str, list[Series]]) -> list[str]:
    notes = []
    for name, members in by_group.items():
        for task in sorted({t for s in members for t in s.tasks}):
            versions = {s.label: s.first(task).raw.get("task_version") for s in members if task in s.tasks}
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
            if r.raw.get("judging_complete") is False:
                notes.append(f"{s.label}: {task} at step {step} is only partly judged ({r.raw.get('unjudged')} "
                             f"samples unjudged): its value covers the judged samples only; rerun evaluate.py")
            bad = (r.raw.get("unjudged_by_status") or {}).get("unparseable", 0)
            if bad and bad >= 0.05 * max(1, r.raw.get("n", 0) * (r.raw.get("k") or 1)):
                notes.append(f"{s.label}: {task} at step {step}: the judge's verdict could not be read for {bad} "
                             f"samples (5% or more); its value covers the others only (worst case: "
                             f"{r.raw.get('worst_case_value')}); check the judge")
    return notes


def _sandbox_notes(s: Series) -> list[str]:
    """Code tasks whose model-written code ran without a kernel boundary (the unsafe opt-in), or unrecorded."""
    notes = []
    for task in s.tasks:
        kinds = {r.raw.get("sandbox") for (t, _), r in s.results.items() if t == task and "sandbox" in r.raw}
        unsafe = sorted(k for k in kinds if not k or "unsafe" in k)
        if unsafe:
            notes.append(f"{s.label}: {task}'s model-written code ran with sandbox {', '.join(map(repr, unsafe))}: "
                         f"not contained by the kernel (RSFT_UNSAFE_SANDBOX=1); trust these scores only as far as "
                         f"you trust the model")
    return notes


def section_warnings(page: Page, series: list[Series], unscored: list[Result]) -> list[str]:
    by_group = groups(series)
    notes = []
    if len(by_group) > 1:
        notes.append(f"these results come from {len(by_group)} different presets or grader versions "
                     f"({'; '.join(by_group)}); they are never drawn on one figure: each has its own figures.")
    notes += _version_notes(by_group) + _judge_notes(series, unscored) + _floor_notes(series)
    for s in series:
        for steps, tasks in _gap_lines(s):
            notes.append(f"{s.label}: no result for {', '.join(tasks)} at steps {', '.join(map(str, steps))} "
                         f"(shown without them); to fill: python evaluate.py {s.run_dir} --preset {s.preset_name} "
                         f"--steps {','.join(map(str, steps))}")
        notes += optimization_warnings(s)
        notes += _sandbox_notes(s)
    if notes:
        page.heading("Warnings")
        for note in notes:
            page.warning(note)
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


# ------------------------------------------------------------------------------------------------ sections


def _in_domain_interval(s: Series) -> dict[int, tuple[float, float]]:
    """A paired-bootstrap 95% interval of the change from the base at the last step, when one task is in-domain."""
    tasks = [t for t in s.tasks if s.averaged(t) and s.in_domain(t)]
    if len(tasks) != 1 or 0 not in s.steps:
        return {}
    last = s.steps[-1]
    base, end = s.result(tasks[0], 0), s.result(tasks[0], last)
    if base is None or end is None or not base.items() or not end.items() or set(base.items()) != set(end.items()):
        return {}
    _, lo, hi = paired_bootstrap(base.items(), end.items())
    return {last: (lo, hi)}


def section_headline(page: Page, series: list[Series]) -> None:
    """What happened, in words, before any table: the in-domain change and the out-of-domain average's course."""
    lines = []
    for s in series:
        in_avg, ood_avg = average(s, True), average(s, False)
        if 0 not in in_avg and 0 not in ood_avg:
            continue
        text = headline({st: v / 100 for st, (v, _) in in_avg.items()} if 0 in in_avg else {},
                        {st: v / 100 for st, (v, _) in ood_avg.items()} if 0 in ood_avg else {},
                        in_ci=_in_domain_interval(s))
        lines.append(f"{s.label}: {text}")
    if lines:
        page.heading("What happened")
        for line in lines:
            page.text(line)


def section_runs(page: Page, series: list[Series]) -> None:
    page.heading("Runs")
    rows = []
    for s in series:
        tables = sorted({b["table"] for b in paper_blocks(s.model, s.data)})
        rows.append([s.label, s.run_dir, s.model, s.data, s.preset_name, s.grader_version,
                     ", ".join(map(str, s.steps)), ", ".join(s.tasks), "; ".join(tables) or "none"])
    page.table(["series", "run folder", "base model", "data", "preset", "grader", "steps", "tasks",
                "paper setting"], rows)


def _score_table(s: Series, tasks: list[str], averages: dict[str, dict]) -> tuple[list[str], list[list]]:
    curves = [s.curve(t) for t in tasks] + list(averages.values())
    rows = [[step_label(step)] + [num(*c[step]) if step in c else "—" for c in curves] for step in s.steps]
    return ["step"] + [_column(s, t) for t in tasks] + list(averages), rows


def _score_csv_rows(s: Series) -> list[list]:
    rows = []
    for task in s.tasks:
        for step, (v, se) in s.curve(task).items():
            r = s.result(task, step)
            rates = [_r(None if x is None else 100 * x) for x in (r.raw.get("truncated_rate"),
                                                                   r.raw.get("no_answer_rate"))]
            rows.append([s.label, s.run_dir, s.preset_name, s.grader_version, step, task, r.raw.get("metric"),
                         s.unit(task), s.higher_is_better(task), s.in_domain(task), _r(v), _r(se), r.raw.get("n"),
                         r.raw.get("k"), *rates, r.raw.get("mean_response_tokens")])
    for name, avg in ((IN_AVG, average(s, True)), (OOD_AVG, average(s, False))):
        rows += [[s.label, s.run_dir, s.preset_name, s.grader_version, step, name, "mean", "%", True,
                  name == IN_AVG, _r(v), _r(se), "", "", "", "", ""] for step, (v, se) in avg.items()]
    return rows


SCORE_CSV_HEADER = ["series", "run", "preset", "grader_version", "step", "task", "metric", "unit",
                    "higher_is_better", "in_domain", "value", "stderr", "n", "k", "truncated_pct", "no_answer_pct",
                    "mean_response_tokens"]


def _task_lines(members: list[Series], colours: list[str], task: str) -> list[Line]:
    lines = [Line(s.label, s.curve(task), c) for s, c in zip(members, colours) if task in s.tasks]
    papers = {}  # one line per paper setting, however many runs match it
    for s in members:
        paper = {step: (v, None) for (t, step), (v, _) in paper_points(s.model, s.data).items() if t == task}
        if paper and task in s.tasks:
            label = f"paper ({short_name(s.model)} + {short_name(s.data)})"
            papers[label] = Line(label, paper, "black", paper=True)
    return lines + list(papers.values())


def section_scores(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Scores")
    page.text(INTRO)
    csv_rows = []
    for s in series:
        page.heading(s.label, 3)
        averaged = [t for t in s.tasks if s.averaged(t)]
        others = [t for t in s.tasks if not s.averaged(t)]
        if averaged:
            page.table(*_score_table(s, averaged, {IN_AVG: average(s, True), OOD_AVG: average(s, False)}))
        if others:
            page.text("Not in the averages (general capability, lower is better, or not a percentage):")
            page.table(*_score_table(s, others, {}))
        csv_rows += _score_csv_rows(s)
    write_csv(out / "scores.csv", SCORE_CSV_HEADER, csv_rows)
    for name, members in groups(series).items():
        colours = colors(len(members))
        tasks = list(dict.fromkeys(t for s in members for t in s.tasks))
        owner = {t: next(s for s in members if t in s.tasks) for t in tasks}
        panels = [Panel(_column(owner[t], t), owner[t].unit(t), _task_lines(members, colours, t)) for t in tasks]
        path = figure(out / f"scores_{_slug(name)}.png", f"Scores against step ({name})", panels)
        page.image(path, f"Each benchmark against step ({name}); error bars ± 1 s.e.; dashed: the base model; "
                         f"dotted black: the paper's published values where a run matches a paper setting.")
        panels = [Panel(title, "%", [Line(s.label, average(s, flag), c) for s, c in zip(members, colours)])
                  for title, flag in ((IN_AVG, True), (OOD_AVG, False))]
        path = figure(out / f"averages_{_slug(name)}.png", f"In-domain vs out-of-domain average ({name})", panels)
        page.image(path, f"In-domain and out-of-domain averages against step ({name}).")


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
            rows.append([name, num(d.base), num(d.worst), "—" if d.worst_step is None else d.worst_step, d.verdict])
            csv_rows.append([s.label, name, _r(d.base), _r(d.worst), d.worst_step, d.recovered_step, d.verdict])
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
                csv_rows.append([s.label, task, step, _r(v), _r(se), _r(sv), _r(sse), _r(v - sv)])
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


def _behaviour_by_step(s: Series) -> dict[int, Behaviour]:
    """The responses of all of a step's tasks, pooled; results without a samples file are left out."""
    out: dict[int, Behaviour] = {}
    for (_, step), r in sorted(s.results.items(), key=lambda kv: kv[0][1]):
        if (b := r.behaviour()) is not None:
            out[step] = out[step].merge(b) if step in out else b
    return out


def _behaviour_row(b: Behaviour) -> list:
    no_answer = b.no_answer_share
    return ([b.responses, _r(b.mean_tokens, 1), _r(100 * b.truncated_share, 1),
             "—" if no_answer is None else _r(100 * no_answer, 1)]
            + [_r(b.per_1k(k)) for k in KINDS] + [_r(b.per_1k(m)) for m in MARKERS])


BEHAVIOUR_HEADER = (["responses", "mean tokens", "truncated %", "no final answer %"]
                    + [f"{k} /1k tok" for k in KINDS] + [f"{m} /1k tok" for m in MARKERS])


def _behaviour_figures(page: Page, series: list[Series], out: Path) -> None:
    for name, members in groups(series).items():
        per = [(s, c, _behaviour_by_step(s)) for s, c in zip(members, colors(len(members)))]

        def panel(title, ylabel, fn):
            return Panel(title, ylabel, [Line(s.label, {st: (y, None) for st, b in bs.items()
                                                        if (y := fn(b)) is not None}, c) for s, c, bs in per])

        path = figure(out / f"length_{_slug(name)}.png", f"Response length and truncation ({name})", [
            panel("mean response length", "tokens", lambda b: b.mean_tokens),
            panel("truncated (thinking never closed)", "% of responses", lambda b: 100 * b.truncated_share)])
        page.image(path, f"Mean response length and truncation rate against step ({name}).")
        path = figure(out / f"behaviour_{_slug(name)}.png", f"Procedural markers and missing answers ({name})", [
            panel("reflection markers", "per 1,000 tokens", lambda b: b.per_1k("reflection")),
            panel("backtracking markers", "per 1,000 tokens", lambda b: b.per_1k("backtracking")),
            panel("no final answer", "% of responses",
                  lambda b: None if b.no_answer_share is None else 100 * b.no_answer_share)])
        page.image(path, f"Reflection and backtracking markers per 1,000 tokens, and responses with no final "
                         f"answer, against step ({name}).")


def section_behaviour(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Length and behaviour over training")
    page.text("From the saved responses (TASK.samples.jsonl), pooled over a step's tasks. Surface verbosity is "
              "the length; procedural patterns are the reflection and backtracking markers, counted per 1,000 "
              "generated tokens so that length alone does not raise them. Markers (rsft/behaviour.py, matched "
              "case-insensitively as whole words over the whole response, thinking included):")
    page.table(["marker", "kind", "pattern"], [[m, kind, f"`{rx}`"] for m, (kind, rx) in MARKERS.items()])
    csv_rows = []
    for s in series:
        by_step = _behaviour_by_step(s)
        page.heading(s.label, 3)
        missing = [f"{t} at step {st}" for (t, st), r in sorted(s.results.items()) if r.behaviour() is None]
        if missing:
            page.text(f"No samples file for {', '.join(missing)}: left out of this table.")
        page.table(["step"] + BEHAVIOUR_HEADER, [[step_label(st)] + _behaviour_row(b) for st, b in by_step.items()])
        csv_rows += [[s.label, "all", st] + _behaviour_row(b) for st, b in by_step.items()]
        csv_rows += [[s.label, t, st] + _behaviour_row(r.behaviour()) for (t, st), r in sorted(s.results.items())
                     if r.behaviour() is not None]
    write_csv(out / "behaviour.csv", ["series", "task", "step"] + BEHAVIOUR_HEADER, csv_rows)
    _behaviour_figures(page, series, out)
    section_procedure(page, series, out)


PROCEDURE_HEADER = ["step", "responses", "arithmetic steps", "steps right %", "target claims", "claims true %"]


def _procedure_rows(s: Series) -> list[list]:
    """Countdown procedure per step, from the countdown samples files (rsft.behaviour.Procedure)."""
    from rsft.rundir import samples_of

    rows = []
    for (task, step), r in sorted(s.results.items(), key=lambda kv: kv[0][1]):
        path = samples_of(r.path)
        if task != "countdown" or not path.exists():
            continue
        try:
            p = countdown_procedure(json.loads(line) for line in path.read_text().splitlines() if line.strip())
        except ValueError as e:  # not the kit's Countdown prompts: no procedure to read
            rows.append([step_label(step), f"not read: {e}", "", "", "", ""])
            continue
        rows.append([step_label(step), p.responses, p.steps, "—" if p.step_accuracy is None else
                     _r(100 * p.step_accuracy, 1), p.claims, "—" if p.claim_truth is None else
                     _r(100 * p.claim_truth, 1)])
    return rows


def section_procedure(page: Page, series: list[Series], out: Path) -> None:
    """Countdown only: is the procedure carried out, or only its surface copied?"""
    per = [(s, rows) for s in series if (rows := _procedure_rows(s))]
    if not per:
        return
    page.heading("Countdown procedure", 3)
    page.text("Read from the Countdown responses' reasoning (rsft/behaviour.py): of the arithmetic steps "
              "\"a op b = c\" written, the share that are right, and of the sentences claiming the target is "
              "reached, the share whose steps are right and end at the target. A model that copies the surface of "
              "the traces writes steps and claims whatever their truth.")
    csv_rows = []
    for s, rows in per:
        page.heading(s.label, 4)
        page.table(PROCEDURE_HEADER, rows)
        csv_rows += [[s.label] + row for row in rows]
    write_csv(out / "procedure.csv", ["series"] + PROCEDURE_HEADER, csv_rows)


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
            csv_rows.append([s.label, task, step, value, _r(v), _r(se), _r(v - value), source])
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
        csv_rows.append([label, task, _r(diff), _r(lo), _r(hi), len(ia), reading])
    page.table(["comparison", "benchmark", "difference (points)", "95% interval", "questions", "reading"], rows)
    write_csv(out / "significance.csv", ["comparison", "task", "diff_points", "low_points", "high_points",
                                         "questions", "reading"], csv_rows)


def write_report(run_dirs: list[Path], out: Path) -> tuple[Path, list[str]]:
    """Every section, as report.md (PNG and CSV files beside it) and one self-contained report.html.
    Returns the HTML page's path and the report's warnings."""
    series, unscored = load_series(run_dirs)
    out.mkdir(parents=True, exist_ok=True)
    page = Page("Report: " + ", ".join(str(d) for d in run_dirs))
    section_headline(page, series)
    warnings = section_warnings(page, series, unscored)
    section_runs(page, series)
    section_scores(page, series, out)
    section_dips(page, series, out)
    section_scorings(page, series, out)
    section_behaviour(page, series, out)
    section_paper(page, series, out)
    section_significance(page, series, out)
    page.heading("Files")
    page.text("Tables as CSV: scores.csv, dips.csv, scorings.csv, behaviour.csv, procedure.csv (Countdown runs), "
              "paper.csv, significance.csv; figures as PNG; "
              "this page as report.md and report.html (self-contained).")
    (out / "report.md").write_text(page.markdown())
    (out / "report.html").write_text(page.html())
    return out / "report.html", warnings
