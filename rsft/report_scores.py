"""The report's Scores section: each task's score at each step with n and a 95% interval (Wilson's where a task is
a proportion scored once per question, else +- 1.96 s.e.), the domain averages, scores.csv, and the score figures."""
from __future__ import annotations

from pathlib import Path

from rsft.plots import Line, Panel, colors, figure
from rsft.report_format import rounded, slug, step_label, write_csv
from rsft.report_page import Page
from rsft.results import (IN_AVG, OOD_AVG, Result, Series, average, domain_tasks, groups, paper_points,
                          short_name)
from rsft.stats import normal_interval, wilson, wilson_mean


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


def _notes(s: Series, task: str) -> list[str]:
    return [n for n in (s.unit(task) if s.unit(task) != "%" else "",
                        "" if s.higher_is_better(task) else "lower is better") if n]


def _column(s: Series, task: str) -> str:
    notes = _notes(s, task)
    return f"{task} ({', '.join(notes)})" if notes else task


WILSON, NORMAL = "Wilson", "±1.96 s.e."


WILSON_MEAN = "Wilson, effective n"  # rsft.stats.wilson_mean


def _wilson_applies(r: Result) -> bool:
    """A percentage scored once per question: each question is 0 or 1, the value a proportion of n."""
    return r.scale == 100.0 and r.k == 1 and bool(r.n)


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


def of_task(s: Series, task: str) -> dict[int, Result]:
    return {step: r for (t, step), r in sorted(s.results.items()) if t == task}


def _task_column(s: Series, task: str) -> tuple[str, dict[int, str]]:
    """The header (n and k where every step shares them, and the interval's kind) and the cells of one task."""
    rs = of_task(s, task)
    ns, ks = {r.n for r in rs.values()}, {r.k for r in rs.values()}
    kinds = dict.fromkeys(WILSON if _wilson_applies(r) else NORMAL for r in rs.values())
    sizes = [f"n={n}" for n in ns if len(ns) == 1 and n] + [f"k={k}" for k in ks if len(ks) == 1 and k and k != 1]
    header = f"{task} ({', '.join(_notes(s, task) + sizes + list(kinds))})"
    cells = {step: cell(r.scale * r.value, _interval(r)) + (f" n={r.n}" if len(ns) > 1 else "")
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
            rates = [rounded(None if x is None else 100 * x) for x in (r.truncated_rate, r.no_answer_rate)]
            lo, hi = _interval(r) or (None, None)
            rows.append([s.label, s.run_dir, s.preset_name, s.grader_version, step, task, r.metric,
                         s.unit(task), s.higher_is_better(task), s.in_domain(task), rounded(v), rounded(se), r.n,
                         r.k, *rates, r.mean_response_tokens, rounded(lo), rounded(hi),
                         "" if lo is None else WILSON if _wilson_applies(r) else NORMAL])
    for name, flag in ((IN_AVG, True), (OOD_AVG, False)):
        for step, (v, se) in average(s, flag).items():
            kind, ci = _average_interval(s, flag, step, v, se)
            lo, hi = ci or (None, None)
            rows.append([s.label, s.run_dir, s.preset_name, s.grader_version, step, name, "mean", "%", True,
                         name == IN_AVG, rounded(v), rounded(se), "", "", "", "", "", rounded(lo), rounded(hi),
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
        path = figure(out / f"scores_{slug(name)}.png", f"Scores against step ({name})", panels)
        page.image(path, f"Each benchmark against step ({name}); error bars ± 1 s.e.; dashed: the base model; "
                         f"dotted black: the paper's published values where a run matches a paper setting.")
        panels = [Panel(title, "%", [Line(s.label, average(s, flag), c) for s, c in zip(members, colours)])
                  for title, flag in ((IN_AVG, True), (OOD_AVG, False))]
        path = figure(out / f"averages_{slug(name)}.png", f"In-domain vs out-of-domain average ({name})", panels)
        page.image(path, f"In-domain and out-of-domain averages against step ({name}).")
