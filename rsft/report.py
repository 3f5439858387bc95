"""The report of one or more evaluated runs: tables, curves, the dip, behaviour, the paper, paired bootstraps.

Reads RUN/eval/PRESET/stepNNNNN/TASK.json and TASK.samples.jsonl as evaluate.py writes them. Every task is read
the same way: its metric and value come from its JSON, which may say `"higher_is_better": false` (default
true, e.g. an attack-success rate is false). Values are fractions in the files and percent in the report.

Results are grouped into *series*: one run under one preset, grader version and preset settings. Series of
different presets or grader versions are never drawn on one figure: each comparable group gets its own figures,
and the report says so.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rsft.behaviour import KINDS, MARKERS, Behaviour, summarize
from rsft.errors import UserError
from rsft.plots import Line, Panel, colors, figure
from rsft.report_page import Page

EVAL_GLOB = "eval/*/step*/*.json"
PAPER_FILE = Path(__file__).with_name("paper_results.yaml")
IN_AVG, OOD_AVG = "in-domain avg", "out-of-domain avg"

# ------------------------------------------------------------------------------------------------ loading


@dataclass(frozen=True)
class Result:
    """One TASK.json."""

    path: Path
    raw: dict

    def __getattr__(self, key):  # result.value, result.step, ...: the JSON's keys
        raw = self.__dict__.get("raw", {})
        if key not in raw:
            raise AttributeError(key)
        return raw[key]

    @property
    def higher_is_better(self) -> bool:
        return self.raw.get("higher_is_better", True)

    @property
    def group_key(self) -> tuple:
        """Results are comparable only under one preset (name and settings) and one grader version."""
        return self.preset_name, json.dumps(self.preset, sort_keys=True), self.grader_version

    def behaviour(self) -> Behaviour | None:
        """Totals over this result's saved responses; None when its samples file is absent."""
        return self._sample_stats and self._sample_stats[0]

    def items(self) -> dict[int, float] | None:
        """{doc_id: the question's accuracy over its k samples}: the unit a paired bootstrap resamples."""
        return self._sample_stats and self._sample_stats[1]

    @functools.cached_property
    def _sample_stats(self) -> tuple[Behaviour, dict[int, float] | None] | None:
        """The samples file read once: (behaviour totals, {doc_id: doc_acc} or None without doc_acc)."""
        path = self.path.with_name(self.path.stem + ".samples.jsonl")
        if not path.exists():
            return None
        samples = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        items = {s["doc_id"]: s["doc_acc"] for s in samples} if samples and "doc_acc" in samples[0] else None
        return summarize(samples), items


def load_result(path: Path) -> Result:
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); delete it and rerun evaluate.py to rewrite it") from None
    missing = {"task", "step", "value", "preset_name", "preset", "grader_version"} - set(raw)
    if missing:
        raise UserError(f"{path} is not an evaluate.py result (missing {', '.join(sorted(missing))})")
    return Result(path, raw)


@dataclass
class Series:
    """One run's results under one preset and grader version: what one curve per task shows."""

    label: str
    run_dir: Path
    preset_name: str
    grader_version: int
    model: str  # the recipe's model.name_or_path
    data: str  # the recipe's data.path
    results: dict[tuple[str, int], Result]
    checkpoint_steps: list[int]
    group: str = ""  # the comparable group (figures), set by load_series

    @property
    def steps(self) -> list[int]:
        return sorted({step for _, step in self.results})

    @property
    def tasks(self) -> list[str]:
        """In-domain first, then out-of-domain, then lower-is-better tasks, each alphabetical."""
        first = {t: r for (t, _), r in sorted(self.results.items())}
        return sorted(first, key=lambda t: (not first[t].higher_is_better, not first[t].in_domain, t))

    def result(self, task: str, step: int) -> Result | None:
        return self.results.get((task, step))

    def curve(self, task: str) -> dict[int, tuple[float, float | None]]:
        return {s: (r.value, r.stderr) for (t, s), r in sorted(self.results.items(), key=lambda kv: kv[0][1])
                if t == task}

    def _first(self, task: str) -> Result:
        return next(r for (t, _), r in self.results.items() if t == task)

    def higher_is_better(self, task: str) -> bool:
        return self._first(task).higher_is_better

    def in_domain(self, task: str) -> bool:
        return self._first(task).in_domain


def _recipe_model_data(run_dir: Path) -> tuple[str, str]:
    from rsft.config import load_recipe

    recipe = load_recipe(run_dir / "recipe.yaml")
    return recipe.model.name_or_path, recipe.data.path


def _checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(json.loads(p.read_text())["step"] for p in run_dir.glob("checkpoints/step*/meta.json"))


def _distinct_names(keys: list[tuple]) -> dict[tuple, str]:
    """A short name per (preset name, preset settings, grader version): the preset name, plus what tells apart
    keys that share it."""
    names = {k: k[0] for k in keys}
    if len(set(names.values())) < len(keys):
        names = {k: f"{k[0]}, grader v{k[2]}" for k in keys}
    if len(set(names.values())) < len(keys):
        names = {k: f"{names[k]}, settings #{i + 1}" for i, k in enumerate(keys)}
    return names


def _series_of_run(run_dir: Path) -> list[Series]:
    if not (run_dir / "recipe.yaml").is_file():
        what = "no such folder" if not run_dir.is_dir() else "not a run folder (no recipe.yaml)"
        raise UserError(f"{run_dir}: {what}; give run folders written by train.py (runs/NAME)")
    files = sorted(run_dir.glob(EVAL_GLOB))
    if not files:
        raise UserError(f"{run_dir} has no evaluation results (eval/PRESET/stepNNNNN/TASK.json); "
                        f"write them with: python evaluate.py {run_dir}")
    by_key: dict[tuple, dict] = {}
    for r in map(load_result, files):
        by_key.setdefault(r.group_key, {})[(r.task, r.step)] = r
    model, data = _recipe_model_data(run_dir)
    names = _distinct_names(list(by_key))
    out = []
    for key, results in by_key.items():
        label = run_dir.name if len(by_key) == 1 else f"{run_dir.name} [{names[key]}]"
        _check_task_versions(label, results)
        out.append(Series(label, run_dir, key[0], key[2], model, data, results, _checkpoint_steps(run_dir)))
    return out


def _check_task_versions(label: str, results: dict[tuple[str, int], Result]) -> None:
    versions: dict[str, dict] = {}
    for (task, step), r in results.items():
        versions.setdefault(task, {}).setdefault(r.raw.get("task_version"), []).append(step)
    for task, by_version in versions.items():
        if len(by_version) > 1:
            listing = "; ".join(f"v{v} at steps {sorted(s)}" for v, s in by_version.items())
            raise UserError(f"{label}: {task} results mix task versions ({listing}); the scoring changed between "
                            f"them. Delete the older TASK.json files and rerun evaluate.py on those steps")


def load_series(run_dirs: list[Path]) -> list[Series]:
    """Every series of the given runs; `group` names the comparable groups (preset and grader version)."""
    series = [s for run_dir in run_dirs for s in _series_of_run(Path(run_dir))]
    labels = [s.label for s in series]
    for s in series:
        if labels.count(s.label) > 1:
            s.label = f"{s.run_dir} {s.label[len(s.run_dir.name):]}".strip()
    keys = list(dict.fromkeys(next(iter(s.results.values())).group_key for s in series))
    names = _distinct_names(keys)
    for s in series:
        s.group = names[next(iter(s.results.values())).group_key]
    return series


def groups(series: list[Series]) -> dict[str, list[Series]]:
    out: dict[str, list[Series]] = {}
    for s in series:
        out.setdefault(s.group, []).append(s)
    return out


# ------------------------------------------------------------------------------------------------ numbers


def average(s: Series, in_domain: bool) -> dict[int, tuple[float, float | None]]:
    """Mean over the series' higher-is-better tasks of one domain, at each step where all of them have a result.
    Its standard error treats the tasks as independent: sqrt(sum se^2) / n."""
    tasks = [t for t in s.tasks if s.higher_is_better(t) and s.in_domain(t) == in_domain]
    out = {}
    for step in s.steps:
        rs = [s.result(t, step) for t in tasks]
        if tasks and all(rs):
            se = None if any(r.stderr is None for r in rs) else math.sqrt(sum(r.stderr ** 2 for r in rs)) / len(rs)
            out[step] = (sum(r.value for r in rs) / len(rs), se)
    return out


def gaps(s: Series) -> dict[str, list[int]]:
    """{task: steps with a checkpoint or another task's result but no result for this task}."""
    expected = set(s.steps) | set(s.checkpoint_steps) | {0}
    return {t: sorted(expected - set(s.curve(t))) for t in s.tasks if expected - set(s.curve(t))}


@dataclass(frozen=True)
class Dip:
    """The worst post-base score and whether (and when) the curve came back to the base score."""

    base: float | None
    worst: float | None = None
    worst_step: int | None = None
    recovered_step: int | None = None
    verdict: str = ""

    @property
    def dipped(self) -> bool:
        return self.verdict == "not recovered" or self.recovered_step is not None


def find_dip(points: dict[int, float], higher_is_better: bool = True) -> Dip:
    """points: {step: value}, step 0 the base. For a lower-is-better task the worst score is the highest."""
    sign = 1 if higher_is_better else -1
    base = points.get(0)
    after = sorted(s for s in points if s > 0)
    if base is None:
        return Dip(None, verdict="no base (step 0) result")
    if not after:
        return Dip(base, verdict="no checkpoint results")
    worst_step = min(after, key=lambda s: (sign * points[s], s))
    worst = points[worst_step]
    if sign * worst >= sign * base:
        return Dip(base, worst, worst_step, verdict="no dip (never worse than base)")
    back = next((s for s in after if s > worst_step and sign * points[s] >= sign * base), None)
    verdict = f"recovered at step {back}" if back is not None else "not recovered"
    return Dip(base, worst, worst_step, back, verdict)


def optimization_warnings(s: Series) -> list[str]:
    """The last checkpoint still below base, or still rising, on the out-of-domain average."""
    avg = average(s, in_domain=False)
    after = sorted(step for step in avg if step > 0)
    if 0 not in avg or not after:
        return []
    last = after[-1]
    (v, se), (b, _) = avg[last], avg[0]
    out = []
    if v < b:
        out.append(f"{s.label}: the out-of-domain average at the last evaluated checkpoint (step {last}) is still "
                   f"below base ({pct(v)} vs {pct(b)}): the run may be under-optimized (the paper's dips recover "
                   f"only with longer training).")
    if len(after) > 1:
        p, pse = avg[after[-2]]
        margin = math.sqrt((se or 0) ** 2 + (pse or 0) ** 2)
        if v - p > margin:
            out.append(f"{s.label}: the out-of-domain average is still rising at the last checkpoint (step "
                       f"{after[-2]} -> {last}: {pct(p)} -> {pct(v)}, more than one standard error): the run may "
                       f"be under-optimized.")
    return out


def paired_bootstrap(a: dict[int, float], b: dict[int, float], n_boot: int = 10_000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, low, high): a percentile interval of the mean paired difference over items (doc ids),
    resampling items with replacement. a and b must hold the same items."""
    import numpy as np

    if set(a) != set(b):
        raise UserError(f"a paired bootstrap needs the same items on both sides; {len(set(a) ^ set(b))} of "
                        f"{len(set(a) | set(b))} items are on one side only")
    ids = sorted(a)
    d = np.array([b[i] - a[i] for i in ids], dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(d.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


# ------------------------------------------------------------------------------------------------ the paper


def _stem(name: str) -> str:
    """The last path component without a data-file extension, lower case: the unit of matching."""
    last = re.split(r"[/\\]", name.rstrip("/\\"))[-1]
    return re.sub(r"\.(jsonl|json|parquet)$", "", last).lower()


@functools.lru_cache(maxsize=1)
def paper_data() -> dict:
    return yaml.safe_load(PAPER_FILE.read_text())


BLOCK_KEYS = {"table", "source", "model", "data", "steps"}


def paper_blocks(model: str, data: str) -> list[dict]:
    """The paper's tables for this base model trained on this dataset, with the model's base row; [] when the
    paper has no such setting."""
    blocks = [b for b in paper_data()["blocks"] if _stem(b["model"]) == _stem(model)]
    trained = [b for b in blocks if b["data"] != "any" and _stem(b["data"]) == _stem(data)]
    return [b for b in blocks if b["data"] == "any"] + trained if trained else []


def paper_points(model: str, data: str) -> dict[tuple[str, int], tuple[float, str]]:
    """{(task, step): (percent, "Table N [source]")} of the matching paper setting."""
    out = {}
    for block in paper_blocks(model, data):
        for task in set(block) - BLOCK_KEYS:
            for step, value in zip(block["steps"], block[task]):
                if value is not None:
                    out[(task, step)] = (value, f"{block['table']} {block['source']}")
    return out


# ------------------------------------------------------------------------------------------------ formatting


def pct(v: float | None, se: float | None = None) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.1f}" + (f" ± {100 * se:.1f}" if se is not None else "")


def step_label(step: int) -> str:
    return "0 (base)" if step == 0 else str(step)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _r(v: float | None, digits: int = 2):
    return "" if v is None else round(v, digits)


# ------------------------------------------------------------------------------------------------ sections

INTRO = ("Scores are percent (the result files hold fractions), ± one standard error over questions as lm-eval "
         "reports it. Step 0 is the base model. The in-domain and out-of-domain averages are means over the "
         "higher-is-better tasks of each domain, at the steps where every one of them has a result; "
         "lower-is-better tasks (e.g. an attack-success rate) have their own table and no average.")


def section_warnings(page: Page, series: list[Series]) -> list[str]:
    notes = []
    by_group = groups(series)
    if len(by_group) > 1:
        notes.append(f"these results come from {len(by_group)} different presets or grader versions "
                     f"({'; '.join(by_group)}); they are never drawn on one figure: each has its own figures.")
    for name, members in by_group.items():
        for task in sorted({t for s in members for t in s.tasks}):
            versions = {s.label: s._first(task).raw.get("task_version") for s in members if task in s.tasks}
            if len(set(versions.values())) > 1:
                notes.append(f"{task} was scored by different task versions in {name} ("
                             + ", ".join(f"{k}: v{v}" for k, v in versions.items()) + "): its curves are not "
                             "comparable; rerun evaluate.py on the older run.")
    for s in series:
        for steps, tasks in _gap_lines(s):
            notes.append(f"{s.label}: no result for {', '.join(tasks)} at steps {', '.join(map(str, steps))} "
                         f"(shown without them); to fill: python evaluate.py {s.run_dir} --preset {s.preset_name} "
                         f"--steps {','.join(map(str, steps))}")
        notes += optimization_warnings(s)
    if notes:
        page.heading("Warnings")
        for note in notes:
            page.warning(note)
    return notes


def _gap_lines(s: Series) -> list[tuple[list[int], list[str]]]:
    by_steps: dict[tuple, list[str]] = {}
    for task, steps in gaps(s).items():
        by_steps.setdefault(tuple(steps), []).append(task)
    return [(list(steps), tasks) for steps, tasks in by_steps.items()]


def section_overview(page: Page, series: list[Series]) -> None:
    page.heading("Runs")
    rows = []
    for s in series:
        tables = sorted({b["table"] for b in paper_blocks(s.model, s.data)})
        rows.append([s.label, s.run_dir, s.model, s.data, s.preset_name, s.grader_version,
                     ", ".join(map(str, s.steps)), ", ".join(s.tasks), "; ".join(tables) or "none"])
    page.table(["series", "run folder", "base model", "data", "preset", "grader", "steps", "tasks",
                "paper setting"], rows)


def _score_table(s: Series, tasks: list[str], averages: bool) -> tuple[list[str], list[list]]:
    avgs = {IN_AVG: average(s, True), OOD_AVG: average(s, False)} if averages else {}
    header = ["step"] + tasks + list(avgs)
    rows = []
    for step in s.steps:
        cells = [pct(r.value, r.stderr) if (r := s.result(t, step)) else "—" for t in tasks]
        cells += [pct(*avg[step]) if step in avg else "—" for avg in avgs.values()]
        rows.append([step_label(step)] + cells)
    return header, rows


def _score_csv_rows(s: Series) -> list[list]:
    rows = []
    for (task, step), r in sorted(s.results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.append([s.label, s.run_dir, s.preset_name, s.grader_version, step, task, r.raw.get("metric"),
                     r.higher_is_better, r.in_domain, _r(100 * r.value), _r(r.stderr and 100 * r.stderr),
                     r.raw.get("n"), r.raw.get("k"), _r(r.raw.get("truncated_rate") and 100 * r.truncated_rate),
                     _r(r.raw.get("no_answer_rate") and 100 * r.no_answer_rate), r.raw.get("mean_response_tokens")])
    for name, avg in ((IN_AVG, average(s, True)), (OOD_AVG, average(s, False))):
        rows += [[s.label, s.run_dir, s.preset_name, s.grader_version, step, name, "mean", True, name == IN_AVG,
                  _r(100 * v), _r(se and 100 * se), "", "", "", "", ""] for step, (v, se) in avg.items()]
    return rows


SCORE_CSV_HEADER = ["series", "run", "preset", "grader_version", "step", "task", "metric", "higher_is_better",
                    "in_domain", "value_pct", "stderr_pct", "n", "k", "truncated_pct", "no_answer_pct",
                    "mean_response_tokens"]


def section_scores(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Scores")
    page.text(INTRO)
    csv_rows = []
    for s in series:
        page.heading(s.label, 3)
        up = [t for t in s.tasks if s.higher_is_better(t)]
        down = [t for t in s.tasks if not s.higher_is_better(t)]
        if up:
            page.table(*_score_table(s, up, averages=True))
        if down:
            page.text("Lower is better:")
            page.table(*_score_table(s, down, averages=False))
        csv_rows += _score_csv_rows(s)
    write_csv(out / "scores.csv", SCORE_CSV_HEADER, csv_rows)
    for name, members in groups(series).items():
        colours = colors(len(members))
        tasks = list(dict.fromkeys(t for s in members for t in s.tasks))
        panels = [Panel(task + ("" if members[0].higher_is_better(task) else " (lower is better)")
                        if task in members[0].tasks else task, "%", _task_lines(members, colours, task))
                  for task in tasks]
        path = figure(out / f"scores_{_slug(name)}.png", f"Scores against step ({name} preset)", panels)
        page.image(path, f"Each benchmark against step, {name} preset; error bars ± 1 s.e.; dotted black: "
                         f"the paper's published values where a run matches a paper setting.")
        panels = [Panel(title, "%", [Line(s.label, _percent(average(s, flag)), c) for s, c in zip(members, colours)])
                  for title, flag in ((IN_AVG, True), (OOD_AVG, False))]
        path = figure(out / f"averages_{_slug(name)}.png", f"In-domain vs out-of-domain average ({name})", panels)
        page.image(path, f"In-domain and out-of-domain averages against step, {name} preset.")


def _percent(points: dict) -> dict:
    return {step: (100 * v, se and 100 * se) for step, (v, se) in points.items()}


def _task_lines(members: list[Series], colours: list[str], task: str) -> list[Line]:
    lines = [Line(s.label, _percent(s.curve(task)), c) for s, c in zip(members, colours) if task in s.tasks]
    for s in members:
        paper = {step: (v, None) for (t, step), (v, _) in paper_points(s.model, s.data).items() if t == task}
        if paper:
            lines.append(Line(f"paper ({_stem(s.model)} + {_stem(s.data)})", paper, "black", paper=True))
    return lines


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def section_dips(page: Page, series: list[Series], out: Path) -> None:
    page.heading("The dip")
    page.text("For each benchmark: the worst score after the base (the lowest; the highest for a lower-is-better "
              "task), the step where it happens, and the first later step back at or above the base score.")
    csv_rows = []
    for s in series:
        rows = []
        curves = {t: (s.curve(t), s.higher_is_better(t)) for t in s.tasks}
        curves |= {IN_AVG: (average(s, True), True), OOD_AVG: (average(s, False), True)}
        for name, (curve, better_up) in curves.items():
            if not curve:
                continue
            d = find_dip({step: v for step, (v, _) in curve.items()}, better_up)
            rows.append([name, pct(d.base), pct(d.worst), d.worst_step if d.worst_step is not None else "—",
                         d.verdict])
            csv_rows.append([s.label, name, _r(d.base and 100 * d.base), _r(d.worst and 100 * d.worst),
                             d.worst_step, d.recovered_step, d.verdict])
        page.heading(s.label, 3)
        page.table(["benchmark", "base", "worst after base", "at step", "recovery"], rows)
    write_csv(out / "dips.csv", ["series", "benchmark", "base_pct", "worst_pct", "worst_step", "recovered_step",
                                 "verdict"], csv_rows)


def _behaviour_by_step(s: Series) -> dict[int, Behaviour]:
    """Responses of every task of a step pooled; results without a samples file are left out."""
    out: dict[int, Behaviour] = {}
    for (_, step), r in sorted(s.results.items(), key=lambda kv: kv[0][1]):
        if (b := r.behaviour()) is not None:
            out[step] = out[step].merge(b) if step in out else b
    return out


def _behaviour_row(b: Behaviour) -> list:
    return ([b.responses, _r(b.mean_tokens, 1), _r(100 * b.truncated_share, 1), _r(100 * b.no_answer_share, 1)]
            + [_r(b.per_1k(k)) for k in KINDS] + [_r(b.per_1k(m)) for m in MARKERS])


BEHAVIOUR_HEADER = (["responses", "mean tokens", "truncated %", "no final answer %"]
                    + [f"{k} /1k tok" for k in KINDS] + [f"{m} /1k tok" for m in MARKERS])


def section_behaviour(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Length and behaviour over training")
    page.text("From the saved responses (TASK.samples.jsonl), pooled over a step's tasks. Surface verbosity is "
              "the length; procedural patterns are the reflection and backtracking markers, counted per 1,000 "
              "generated tokens so that length alone does not raise them. Markers (rsft/behaviour.py, matched "
              "case-insensitively as whole words over the whole response):")
    page.table(["marker", "kind", "pattern"], [[m, kind, f"`{rx}`"] for m, (kind, rx) in MARKERS.items()])
    csv_rows = []
    for s in series:
        by_step = _behaviour_by_step(s)
        page.heading(s.label, 3)
        missing = [f"{t}@{step}" for (t, step), r in s.results.items() if r.behaviour() is None]
        if missing:
            page.text(f"No samples file for {', '.join(missing)}: left out of this table.")
        page.table(["step"] + BEHAVIOUR_HEADER, [[step_label(st)] + _behaviour_row(b) for st, b in by_step.items()])
        csv_rows += [[s.label, "all", st] + _behaviour_row(b) for st, b in by_step.items()]
        csv_rows += [[s.label, t, st] + _behaviour_row(r.behaviour()) for (t, st), r in sorted(s.results.items())
                     if r.behaviour() is not None]
    write_csv(out / "behaviour.csv", ["series", "task", "step"] + BEHAVIOUR_HEADER, csv_rows)
    for name, members in groups(series).items():
        per = [(s, c, _behaviour_by_step(s)) for s, c in zip(members, colors(len(members)))]

        def panel(title, ylabel, fn):
            return Panel(title, ylabel, [Line(s.label, {st: (fn(b), None) for st, b in bs.items()}, c)
                                         for s, c, bs in per])

        path = figure(out / f"length_{_slug(name)}.png", f"Response length and truncation ({name})", [
            panel("mean response length", "tokens", lambda b: b.mean_tokens),
            panel("truncated (thinking never closed)", "% of responses", lambda b: 100 * b.truncated_share)])
        page.image(path, f"Mean response length and truncation rate against step, {name} preset.")
        path = figure(out / f"behaviour_{_slug(name)}.png", f"Procedural markers and missing answers ({name})", [
            panel("reflection markers", "per 1,000 tokens", lambda b: b.per_1k("reflection")),
            panel("backtracking markers", "per 1,000 tokens", lambda b: b.per_1k("backtracking")),
            panel("no final answer", "% of responses", lambda b: 100 * b.no_answer_share)])
        page.image(path, f"Reflection and backtracking markers per 1,000 tokens, and responses with no final "
                         f"answer, against step, {name} preset.")


def section_paper(page: Page, series: list[Series], out: Path) -> None:
    page.heading("The paper side by side")
    csv_rows = []
    for s in series:
        points = paper_points(s.model, s.data)
        if not points:
            continue
        page.heading(s.label, 3)
        if s.preset_name != "paper":
            page.text(f"This run used the {s.preset_name} preset, not the paper's protocol (32,768 new tokens, the "
                      f"paper's k, whole benchmarks): part of every difference is the protocol.")
        rows = []
        for (task, step), (value, source) in sorted(points.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if (r := s.result(task, step)) is None:
                continue
            diff = 100 * r.value - value
            rows.append([task, step_label(step), f"{value:.1f}", pct(r.value, r.stderr), f"{diff:+.1f}", source])
            csv_rows.append([s.label, task, step, value, _r(100 * r.value), _r(r.stderr and 100 * r.stderr),
                             _r(diff), source])
        if rows:
            page.table(["benchmark", "step", "paper", "this run", "run − paper (points)", "paper source"], rows)
        else:
            page.text("The paper has this setting, but this run has no result at the paper's steps and tasks.")
    if not csv_rows and not any(paper_points(s.model, s.data) for s in series):
        settings = sorted({f"{b['model']} + {b['data']}" for b in paper_data()["blocks"] if b["data"] != "any"})
        page.text("No run matches a setting of the paper (same base model and dataset). Settings with published "
                  "numbers (rsft/paper_results.yaml): " + "; ".join(settings) + ".")
    write_csv(out / "paper.csv", ["series", "task", "step", "paper_pct", "run_pct", "run_stderr_pct",
                                  "diff_points", "paper_source"], csv_rows)


def _comparisons(series: list[Series]) -> list[tuple[str, str, Result, Result]]:
    """(label, task, a, b) pairs to test: within a series, the dip and the last step against the base; across the
    series of one group, each against the first at their last common step."""
    out = []
    for s in series:
        for task in s.tasks:
            curve = {step: v for step, (v, _) in s.curve(task).items()}
            d = find_dip(curve, s.higher_is_better(task))
            steps = dict.fromkeys(([d.worst_step] if d.dipped else []) + [max(curve)])
            out += [(f"{s.label}: step {st} − base", task, s.result(task, 0), s.result(task, st)) for st in steps
                    if st > 0 and s.result(task, 0)]
    for members in groups(series).values():
        first = members[0]
        for other in members[1:]:
            for task in [t for t in first.tasks if t in other.tasks]:
                common = set(first.curve(task)) & set(other.curve(task))
                if common:
                    st = max(common)
                    out.append((f"{other.label} − {first.label} at step {st}", task, first.result(task, st),
                                other.result(task, st)))
    return out


def section_significance(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Is it real? Paired bootstrap")
    page.text("Difference of two evaluations on the same questions, with a 95% paired bootstrap interval (10,000 "
              "resamples of questions; each question's accuracy is the mean over its k samples). An interval "
              "that excludes 0 is a real change at this sample size; one that covers 0 may be noise.")
    rows, csv_rows = [], []
    for label, task, a, b in _comparisons(series):
        ia, ib = a.items(), b.items()
        if ia is None or ib is None or set(ia) != set(ib):
            reading = "no samples file" if ia is None or ib is None else "not the same questions: not paired"
            rows.append([label, task, "—", "—", "—", reading])
            continue
        diff, lo, hi = paired_bootstrap(ia, ib)
        reading = "covers 0: may be noise" if lo <= 0 <= hi else "excludes 0: a real difference"
        rows.append([label, task, f"{100 * diff:+.1f}", f"[{100 * lo:+.1f}, {100 * hi:+.1f}]", len(ia), reading])
        csv_rows.append([label, task, _r(100 * diff), _r(100 * lo), _r(100 * hi), len(ia), reading])
    page.table(["comparison", "benchmark", "difference (points)", "95% interval", "questions", "reading"], rows)
    write_csv(out / "significance.csv", ["comparison", "task", "diff_points", "low_points", "high_points",
                                         "questions", "reading"], csv_rows)


def write_report(run_dirs: list[Path], out: Path) -> tuple[Path, list[str]]:
    """Every section, as report.md (PNG and CSV files beside it) and one self-contained report.html.
    Returns the HTML page and the report's warnings."""
    series = load_series(run_dirs)
    out.mkdir(parents=True, exist_ok=True)
    page = Page("Report: " + ", ".join(str(d) for d in run_dirs))
    warnings = section_warnings(page, series)
    section_overview(page, series)
    section_scores(page, series, out)
    section_dips(page, series, out)
    section_behaviour(page, series, out)
    section_paper(page, series, out)
    section_significance(page, series, out)
    page.heading("Files")
    page.text("Tables as CSV: scores.csv, dips.csv, behaviour.csv, paper.csv, significance.csv; figures as PNG; "
              "this page as report.md and report.html (self-contained).")
    (out / "report.md").write_text(page.markdown())
    (out / "report.html").write_text(page.html())
    return out / "report.html", warnings
