"""The report of evaluated runs: one page of sections, each a table (also written as CSV) and its figures.

Sections: what happened (the headline in words, with paired-bootstrap intervals, and the change-from-base
figure), warnings (mixed presets or grader versions, missing steps, unjudged results, floor or ceiling effects,
under-optimized runs), runs (with metrics.jsonl's tokens, time and loss), scores (each cell with n and a 95%
interval), the dip, two scorings, length and behaviour (and the Countdown procedure), the paper side by side,
paired bootstraps. The numbers come from rsft/results.py and rsft/stats.py, the markers from rsft/behaviour.py, the
figures from rsft/plots.py; rsft/report_page.py renders the page as Markdown and as one self-contained HTML file.

One module of ~700 lines on purpose: the report's sections in page order, each with its few small helpers above
it, so a section reads in one place; nothing here computes more than a cell's interval.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from rsft.behaviour import KINDS, MARKERS, Behaviour, countdown_procedure
from rsft.plots import Line, Panel, colors, figure
from rsft.report_page import Page
from rsft.stats import (floor_or_ceiling, headline, normal_interval, stratified_bootstrap, wilson, wilson_mean,
                        worst_step)
from rsft.results import (IN_AVG, OOD_AVG, Result, Series, average, domain_pairs, domain_tasks, find_dip, gaps,
                          groups, load_series, optimization_warnings, paired_bootstrap, paper_blocks, paper_data,
                          paper_points, short_name)

INTRO = ("Scores are percent (the result files hold fractions), each with its 95% interval in brackets; n is the "
         "number of questions and k the samples per question (a metric with its own unit, such as a reward model's "
         "mean score, is shown as it is). For a task scored once per question (k = 1) the score is a proportion and "
         "the interval is Wilson's, which stays sound at 0% and 100% (where ± 1.96 standard errors shrinks to a "
         "point); for avg@k (k > 1), the averages and other units it is the value ± 1.96 standard errors as lm-eval "
         "reports them, clipped to 0..100%. Each column's header says which. Step 0 "
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


def _notes(s: Series, task: str) -> list[str]:
    return [n for n in (s.unit(task) if s.unit(task) != "%" else "",
                        "" if s.higher_is_better(task) else "lower is better") if n]


def _column(s: Series, task: str) -> str:
    notes = _notes(s, task)
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


def _grading_notes(s: Series) -> list[str]:
    """Results that are not a number (NaN, an infinity: a damaged file, or a grader's bug) and results some of whose
    samples could not be graded (rsft.tasks.common.guarded: scored 0, each logged with its reason)."""
    notes = []
    for (task, step), r in sorted(s.results.items()):
        bad = [k for k in ("value", "strict") if isinstance(r.raw.get(k), float) and not math.isfinite(r.raw[k])]
        if bad:
            notes.append(f"{s.label}: {task} at step {step} has {' and '.join(f'{k} {r.raw[k]}' for k in bad)}, "
                         f"not a score: delete {r.path} and rerun evaluate.py to redo it")
        share = (r.raw.get("extra_metrics") or {}).get("ungradeable")
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


def _small_n(s: Series) -> dict[str, int]:
    """{task: its smallest n} for the series' tasks scored on fewer than SMALL_N questions (a --limit smoke test)."""
    small: dict[str, int] = {}
    for (task, _), r in s.results.items():
        n = r.raw.get("n")
        if isinstance(n, int) and n < SMALL_N:
            small[task] = min(n, small.get(task, n))
    return small


def _small_n_notes(series: list[Series]) -> list[str]:
    notes = []
    for s in series:
        if small := _small_n(s):
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


# ------------------------------------------------------------------------------------------------ sections


def _domain_interval(s: Series, in_domain: bool, step: int) -> tuple[float, float] | None:
    """A paired-bootstrap 95% interval (fractions) of the domain average's change from the base at `step`
    (rsft.stats.stratified_bootstrap: questions pair within a task, not across tasks); None where rsft.results'
    domain_pairs finds nothing to pair."""
    pairs = domain_pairs(s, in_domain, 0, step)
    return stratified_bootstrap(pairs)[1:] if pairs else None


def _fractions(s: Series, in_domain: bool) -> dict[int, float]:
    """The domain average as fractions, or {} without a base and a later step to compare it with."""
    avg = {step: v / 100 for step, (v, _) in average(s, in_domain).items()}
    return avg if 0 in avg and len(avg) > 1 else {}


def _headline_steps(in_avg: dict[int, float], ood_avg: dict[int, float]) -> dict[bool, int]:
    """The step each domain's headline number is read at (rsft.stats.headline): in-domain at the last step; the
    out-of-domain average at its worst step if it fell below the base, else at the last step."""
    steps = {True: max(in_avg)} if in_avg else {}
    if ood_avg:
        worst = worst_step(ood_avg)
        steps[False] = worst if ood_avg[worst] < ood_avg[0] else max(ood_avg)
    return steps


def _headline_line(s: Series) -> str | None:
    in_avg, ood_avg = _fractions(s, True), _fractions(s, False)
    if not in_avg and not ood_avg:
        return None
    cis = {flag: {step: ci} for flag, step in _headline_steps(in_avg, ood_avg).items()
           if (ci := _domain_interval(s, flag, step))}
    text = f"{s.label}: {headline(in_avg, ood_avg, in_ci=cis.get(True), ood_ci=cis.get(False))}"
    missing = [name for name, avg, flag in (("in-domain", in_avg, True), ("out-of-domain", ood_avg, False))
               if avg and flag not in cis]
    if missing:
        text += (f" (No interval for the {' or the '.join(missing)} change: a task there has no per-question "
                 f"scores, or other questions at the two steps, so nothing can be paired.)")
    if small := _small_n(s):
        text += f" (Only n = {min(small.values())} questions in a task: a smoke test, not a finding; see Warnings.)"
    return text + _guess_note(s)


def _samples(r: Result) -> list[dict] | None:
    """The lines of a result's samples file; None when it has none."""
    from rsft.rundir import samples_of

    path = samples_of(r.path)
    if not path.exists():
        return None
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _guess_note(s: Series) -> str:
    """For a run evaluated on Countdown: a random guess's score on its puzzles, beside the last step's."""
    of = _of_task(s, "countdown")
    if not of:
        return ""
    step = max(of)
    samples = _samples(of[step])
    guess = _guess_rate(samples) if samples else None
    if guess is None:
        return ""
    return (f" A random guess solves {100 * guess:.1f}% of the Countdown puzzles (step {step}: "
            f"{of[step].scale * of[step].value:.1f}%).")


def _change_lines(s: Series, colour: str) -> list[Line]:
    """Each domain average minus its base value, in points; step 0 is the point (0, 0)."""
    lines = []
    for name, flag, style in ((IN_AVG, True, "-"), (OOD_AVG, False, "--")):
        avg = average(s, flag)
        if 0 in avg and len(avg) > 1:
            lines.append(Line(f"{s.label}: {name}", {st: (v - avg[0][0], None) for st, (v, _) in avg.items()},
                              colour, linestyle=style))
    return lines


def section_headline(page: Page, series: list[Series], out: Path) -> None:
    """What happened, in words and one figure, before any table: the in-domain change and the out-of-domain
    average's course, each with a paired-bootstrap interval where the results keep their questions."""
    lines = [line for s in series if (line := _headline_line(s))]
    if not lines:
        return
    page.heading("What happened")
    for line in lines:
        page.text(line)
    page.text("Changes are in percentage points against the base model (step 0); brackets: a 95% paired bootstrap "
              "over questions (each task's questions resampled, the tasks weighted equally as in the averages).")
    for name, members in groups(series).items():
        change = [line for s, c in zip(members, colors(len(members))) for line in _change_lines(s, c)]
        if change:
            path = figure(out / f"change_{_slug(name)}.png", f"Change from the base model ({name})",
                          [Panel("in-domain (solid) and out-of-domain (dashed) average", "change from the base "
                                 "(points)", change, x="symlog", y="change")], ncols=1)
            page.image(path, f"In-domain and out-of-domain average minus the base model's, in points, against "
                             f"step ({name}); step 0 is the base itself.")


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


WILSON, NORMAL = "Wilson", "±1.96 s.e."
WILSON_MEAN = "Wilson, effective n"  # rsft.stats.wilson_mean


def _wilson_applies(r: Result) -> bool:
    """A percentage scored once per question: each question is 0 or 1, the value a proportion of n."""
    return r.scale == 100.0 and r.raw.get("k") == 1 and bool(r.raw.get("n"))


def _interval(r: Result) -> tuple[float, float] | None:
    """The result's 95% interval in the units shown (None when it has no standard error and no Wilson)."""
    if _wilson_applies(r):
        return tuple(100 * x for x in wilson(r.value * r.n, r.n))
    if r.stderr is None:
        return None
    bounds = (0.0, 1.0) if r.scale == 100.0 else (None, None)  # a percentage cannot leave 0..100
    return tuple(r.scale * x for x in normal_interval(r.value, r.stderr, *bounds))


def cell(v: float, interval: tuple[float, float] | None) -> str:
    return f"{v:.1f}" + (f" [{interval[0]:.1f}, {interval[1]:.1f}]" if interval else "")


def _of_task(s: Series, task: str) -> dict[int, Result]:
    return {step: r for (t, step), r in sorted(s.results.items()) if t == task}


def _task_column(s: Series, task: str) -> tuple[str, dict[int, str]]:
    """The header (n and k where every step shares them, and the interval's kind) and the cells of one task."""
    rs = _of_task(s, task)
    ns, ks = {r.raw.get("n") for r in rs.values()}, {r.raw.get("k") for r in rs.values()}
    kinds = dict.fromkeys(WILSON if _wilson_applies(r) else NORMAL for r in rs.values())
    sizes = [f"n={n}" for n in ns if len(ns) == 1 and n] + [f"k={k}" for k in ks if len(ks) == 1 and k and k != 1]
    header = f"{task} ({', '.join(_notes(s, task) + sizes + list(kinds))})"
    cells = {step: cell(r.scale * r.value, _interval(r)) + (f" n={r.raw.get('n')}" if len(ns) > 1 else "")
             for step, r in rs.items()}
    return header, cells


def _average_interval(s: Series, in_domain: bool, step: int, v: float, se: float | None):
    """(kind, 95% interval in %) of a domain average at a step: Wilson at the tasks' effective number of questions
    when each task is a proportion scored once per question (sound at 0% and 100%), else mean ± 1.96 s.e."""
    rs = [s.result(t, step) for t in domain_tasks(s, in_domain)]
    if rs and all(r is not None and r.value is not None and _wilson_applies(r) for r in rs):
        return WILSON_MEAN, tuple(100 * x for x in wilson_mean([r.value for r in rs], [r.n for r in rs]))
    return (NORMAL, None) if se is None else (NORMAL, normal_interval(v, se, 0.0, 100.0))


def _average_column(s: Series, name: str, in_domain: bool) -> tuple[str, dict[int, str]]:
    """An average of one task is that task, Wilson interval included; of several, rsft.stats.wilson_mean where
    each task is a proportion, else mean ± 1.96 s.e."""
    tasks = domain_tasks(s, in_domain)
    if len(tasks) == 1:
        return f"{name} (= {tasks[0]})", _task_column(s, tasks[0])[1]
    cis = {step: _average_interval(s, in_domain, step, v, se) for step, (v, se) in average(s, in_domain).items()}
    kinds = ", ".join(dict.fromkeys(kind for kind, _ in cis.values()))
    return f"{name} ({kinds})", {step: cell(average(s, in_domain)[step][0], ci) for step, (_, ci) in cis.items()}


def _score_table(s: Series, tasks: list[str], averages: bool) -> tuple[list[str], list[list]]:
    columns = [_task_column(s, t) for t in tasks]
    columns += [_average_column(s, n, flag) for n, flag in ((IN_AVG, True), (OOD_AVG, False))
                if averages and domain_tasks(s, flag)]
    rows = [[step_label(step)] + [cells.get(step, "—") for _, cells in columns] for step in s.steps]
    return ["step"] + [header for header, _ in columns], rows


def _score_csv_rows(s: Series) -> list[list]:
    rows = []
    for task in s.tasks:
        for step, (v, se) in s.curve(task).items():
            r = s.result(task, step)
            rates = [_r(None if x is None else 100 * x) for x in (r.raw.get("truncated_rate"),
                                                                   r.raw.get("no_answer_rate"))]
            lo, hi = _interval(r) or (None, None)
            rows.append([s.label, s.run_dir, s.preset_name, s.grader_version, step, task, r.raw.get("metric"),
                         s.unit(task), s.higher_is_better(task), s.in_domain(task), _r(v), _r(se), r.raw.get("n"),
                         r.raw.get("k"), *rates, r.raw.get("mean_response_tokens"), _r(lo), _r(hi),
                         "" if lo is None else WILSON if _wilson_applies(r) else NORMAL])
    for name, flag in ((IN_AVG, True), (OOD_AVG, False)):
        for step, (v, se) in average(s, flag).items():
            kind, ci = _average_interval(s, flag, step, v, se)
            lo, hi = ci or (None, None)
            rows.append([s.label, s.run_dir, s.preset_name, s.grader_version, step, name, "mean", "%", True,
                         name == IN_AVG, _r(v), _r(se), "", "", "", "", "", _r(lo), _r(hi),
                         "" if ci is None else kind])
    return rows


SCORE_CSV_HEADER = ["series", "run", "preset", "grader_version", "step", "task", "metric", "unit",
                    "higher_is_better", "in_domain", "value", "stderr", "n", "k", "truncated_pct", "no_answer_pct",
                    "mean_response_tokens", "ci95_low", "ci95_high", "ci95_kind"]


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
            page.table(*_score_table(s, averaged, averages=True))
        if others:
            page.text("Not in the averages (general capability, lower is better, or not a percentage):")
            page.table(*_score_table(s, others, averages=False))
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
            percent = name in (IN_AVG, OOD_AVG) or s.unit(name) == "%"
            bound = percent and len(curve) > 1 and floor_or_ceiling({st: v / 100 for st, (v, _) in curve.items()})
            verdict = (f"none can be seen: at {'0' if bound == 'floor' else '100'}% at every step (a {bound})"
                       if bound else d.verdict)
            rows.append([name, num(d.base), num(d.worst), "—" if d.worst_step is None else d.worst_step, verdict])
            csv_rows.append([s.label, name, _r(d.base), _r(d.worst), d.worst_step, d.recovered_step, verdict])
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


def _behaviour_cells(b: Behaviour) -> list[str]:
    """The page's row: one number format per column, 1 decimal for length and shares, 2 for the rates per 1k
    tokens (the CSV keeps _behaviour_row's rounded numbers)."""
    row = _behaviour_row(b)
    return [str(row[0])] + [c if isinstance(c, str) else f"{c:.{1 if i < 3 else 2}f}" for i, c in enumerate(row[1:])]


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
        page.table(["step"] + BEHAVIOUR_HEADER, [[step_label(st)] + _behaviour_cells(b) for st, b in by_step.items()])
        csv_rows += [[s.label, "all", st] + _behaviour_row(b) for st, b in by_step.items()]
        csv_rows += [[s.label, t, st] + _behaviour_row(r.behaviour()) for (t, st), r in sorted(s.results.items())
                     if r.behaviour() is not None]
    write_csv(out / "behaviour.csv", ["series", "task", "step"] + BEHAVIOUR_HEADER, csv_rows)
    _behaviour_figures(page, series, out)
    section_procedure(page, series, out)


PROCEDURE_HEADER = ["step", "responses", "arithmetic steps", "steps right %", "target claims", "claims true %",
                    "random guess %"]


def _puzzle(doc) -> tuple[tuple[int, ...], int] | None:
    """(numbers, target) of a Countdown sample's doc (rsft/tasks/countdown), None when it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("numbers"), list):
        return None
    numbers, target = doc["numbers"], doc.get("target")
    if not all(type(n) is int for n in numbers) or type(target) is not int:
        return None
    return tuple(numbers), target


def _guess_rate(samples: list[dict]) -> float | None:
    """rsft.countdown.chance averaged over the distinct puzzles of the samples (repeats counted once): the score
    of a random combination of each puzzle's numbers. None when a sample is not a Countdown puzzle's, or one
    has too many numbers to count."""
    from rsft.countdown import chance

    puzzles = {_puzzle(x.get("doc")) for x in samples}
    if not puzzles or None in puzzles:
        return None
    rates = [chance(list(numbers), target) for numbers, target in puzzles]
    return None if None in rates else sum(rates) / len(rates)


def _procedure_rows(s: Series) -> list[list]:
    """Countdown procedure per step, from the countdown samples files (rsft.behaviour.Procedure)."""
    rows = []
    for (task, step), r in sorted(s.results.items(), key=lambda kv: kv[0][1]):
        samples = _samples(r) if task == "countdown" else None
        if samples is None:
            continue
        try:
            p = countdown_procedure(samples)
        except ValueError as e:  # not the kit's Countdown prompts: no procedure to read
            rows.append([step_label(step), f"not read: {e}", "", "", "", "", ""])
            continue
        guess = _guess_rate(samples)
        rows.append([step_label(step), p.responses, p.steps, "—" if p.step_accuracy is None else
                     _r(100 * p.step_accuracy, 1), p.claims, "—" if p.claim_truth is None else
                     _r(100 * p.claim_truth, 1), "—" if guess is None else _r(100 * guess, 1)])
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
              "the traces writes steps and claims whatever their truth. Random guess: the score of one way of "
              "combining each puzzle's numbers drawn at random (rsft/countdown.py `chance`); a Countdown score "
              "near it is no evidence of search.")
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
