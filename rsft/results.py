"""Evaluation results as the report reads them: series of (task, step) results, the domain averages, the questions
a paired bootstrap pairs, the under-optimization warnings, and the paper's published numbers.

Reads RUN/eval/PRESET/stepNNNNN/TASK.json (and TASK.samples.jsonl beside it) as evaluate.py writes them. Every
task is read the same way: its metric and value come from its JSON, which may say `"higher_is_better": false`
(an attack-success rate). Values are fractions in the files and percent here, except metrics with their own
unit (rsft.task_result.RAW_METRICS), which are shown as they are and enter no average.

A *series* is one run under one preset (name and settings) and one grader version: results are comparable
only within one. Series of the same preset and grader version form a *group*, the unit of one figure.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from rsft.behaviour import Behaviour, summarize
from rsft.errors import UserError
from rsft.catalogue import task_group
from rsft.rundir import EVAL_RESULTS_GLOB, checkpoint_dirs, is_result, read_jsonl, samples_of
from rsft.stats import stratified_bootstrap
from rsft.task_result import TaskResult

PAPER_FILE = Path(__file__).with_name("paper_results.yaml")
IN_AVG, OOD_AVG = "in-domain avg", "out-of-domain avg"
Point = tuple[float, float | None]  # (value, standard error), in the units shown

# ------------------------------------------------------------------------------------------------ loading


@dataclass(frozen=True, kw_only=True)
class Result(TaskResult):
    """One TASK.json (rsft.task_result) and where it was read from, with its samples file beside it."""

    path: Path

    @property
    def group_key(self) -> tuple:
        return self.preset_name, json.dumps(self.preset, sort_keys=True), self.grader_version

    def behaviour(self) -> Behaviour | None:
        """Totals over this result's saved responses; None when its samples file is absent."""
        return self._sample_stats and self._sample_stats[0]

    def items(self) -> dict[int, float] | None:
        """{doc_id: the question's accuracy over its k samples}: the unit a paired bootstrap resamples. None for
        tasks without per-question accuracy (judge-scored ones)."""
        return self._sample_stats and self._sample_stats[1]

    @functools.cached_property
    def _sample_stats(self) -> tuple[Behaviour, dict[int, float] | None] | None:
        path = samples_of(self.path)
        if not path.exists():
            return None
        samples = read_jsonl(path)
        if samples is None:
            raise UserError(f"{path} is cut short or not JSON lines; rerun evaluate.py on that step (it redoes "
                            f"the task) or delete the folder")
        graded = samples and samples[0].get("doc_acc") is not None
        items = {s["doc_id"]: s["doc_acc"] for s in samples} if graded else None
        # a final \boxed{} answer is asked for only where the task reports a no-answer rate (not judged tasks)
        return summarize(samples, expects_answer=self.no_answer_rate is not None), items


def load_result(path: Path) -> Result:
    """One TASK.json, or a one-line UserError naming it and the fix (rsft.task_result.TaskResult.read)."""
    return Result.read(path, path=path)


@dataclass
class Series:
    """One run's results under one preset and grader version."""

    label: str
    run_dir: Path
    preset_name: str
    grader_version: int
    model: str  # the recipe's model.name_or_path
    data: str  # the recipe's data.path
    results: dict[tuple[str, int], Result]  # (task, step) -> result with a value
    checkpoint_steps: list[int]
    group: str = ""  # the comparable group, set by load_series

    @property
    def steps(self) -> list[int]:
        return sorted({step for _, step in self.results})

    @property
    def tasks(self) -> list[str]:
        """Averaged in-domain, averaged out-of-domain, then the rest, each alphabetical."""
        return sorted({t for t, _ in self.results}, key=lambda t: (not self.averaged(t), not self.in_domain(t), t))

    def result(self, task: str, step: int) -> Result | None:
        return self.results.get((task, step))

    def curve(self, task: str) -> dict[int, Point]:
        """{step: (value, stderr)} in the units shown (percent for fractions)."""
        rs = sorted((s, r) for (t, s), r in self.results.items() if t == task)
        return {s: (r.scale * r.value, None if r.stderr is None else r.scale * r.stderr) for s, r in rs}

    def strict_curve(self, task: str) -> dict[int, Point]:
        """{step: (strict, stderr)}: the kit's reasoning-correct score (an answer only after a closed </think>), for
        results that carry one (not judged tasks, not results written before it existed)."""
        rs = sorted((s, r) for (t, s), r in self.results.items() if t == task and r.strict is not None)
        return {s: (r.scale * r.strict, None if r.strict_stderr is None else r.scale * r.strict_stderr)
                for s, r in rs}

    def first(self, task: str) -> Result:
        return next(r for (t, _), r in self.results.items() if t == task)

    def higher_is_better(self, task: str) -> bool:
        return self.first(task).higher_is_better

    def group_of(self, task: str) -> str:
        """The task's group as its result recorded it (rsft/catalogue.py GROUPS); results written before the group
        was recorded take the task's group of today."""
        return self.first(task).group or task_group(task)

    def in_domain(self, task: str) -> bool:
        return self.group_of(task) == "in_domain"

    def averaged(self, task: str) -> bool:
        """Higher-is-better reasoning percentages enter the domain averages; lower-is-better, raw-unit and
        general-capability tasks (IFEval, HaluEval, TruthfulQA, AlpacaEval) do not."""
        return self.higher_is_better(task) and self.first(task).scale == 100.0 and self.group_of(task) != "general"

    def unit(self, task: str) -> str:
        return "%" if self.first(task).scale == 100.0 else self.first(task).metric


def _recipe_model_data(run_dir: Path) -> tuple[str, str]:
    from rsft.config import load_recipe

    recipe = load_recipe(run_dir / "recipe.yaml")
    return recipe.model.name_or_path, recipe.data.path


def _checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(json.loads((p / "meta.json").read_text())["step"] for p in checkpoint_dirs(run_dir))


def _distinct_names(keys: list[tuple]) -> dict[tuple, str]:
    """A short name per (preset name, preset settings, grader version): the preset name, plus the grader version
    or a settings number only where keys share it."""
    names = {}
    for key in keys:
        same_preset = [k for k in keys if k[0] == key[0]]
        name = key[0]
        if len({k[2] for k in same_preset}) > 1:
            name += f", grader v{key[2]}"
        same_grader = [k for k in same_preset if k[2] == key[2]]
        if len(same_grader) > 1:
            name += f", settings #{same_grader.index(key) + 1}"
        names[key] = name
    return names


def _check_task_versions(label: str, results: dict[tuple[str, int], Result]) -> None:
    versions: dict[str, dict] = {}
    for (task, step), r in sorted(results.items(), key=lambda kv: kv[0][1]):
        versions.setdefault(task, {}).setdefault(r.task_version, []).append(step)
    for task, by_version in versions.items():
        if len(by_version) > 1:
            listing = "; ".join(f"v{v} at steps {s}" for v, s in by_version.items())
            raise UserError(f"{label}: {task} results mix task versions ({listing}); the scoring changed between "
                            f"them. Delete the older TASK.json files and rerun evaluate.py on those steps")


def load_run(run_dir: Path) -> tuple[list[Series], list[Result]]:
    """The run's series, and its results that have no value yet (a judge-scored task not fully judged)."""
    if not (run_dir / "recipe.yaml").is_file():
        what = "no such folder" if not run_dir.is_dir() else "not a run folder (no recipe.yaml)"
        raise UserError(f"{run_dir}: {what}; give run folders written by train.py (runs/NAME)")
    files = sorted(p for p in run_dir.glob(EVAL_RESULTS_GLOB) if is_result(p))
    if not files:
        raise UserError(f"{run_dir} has no evaluation results (eval/PRESET/stepNNNNN/TASK.json); "
                        f"write them with: python evaluate.py {run_dir}")
    results = [load_result(f) for f in files]
    by_key: dict[tuple, dict] = {}
    for r in results:
        if r.value is not None:
            by_key.setdefault(r.group_key, {})[(r.task, r.step)] = r
    model, data = _recipe_model_data(run_dir)
    names = _distinct_names(list(by_key))
    series = []
    for key, rs in by_key.items():
        label = run_dir.name if len(by_key) == 1 else f"{run_dir.name} [{names[key]}]"
        _check_task_versions(label, rs)
        series.append(Series(label, run_dir, key[0], key[2], model, data, rs, _checkpoint_steps(run_dir)))
    return series, [r for r in results if r.value is None]


def load_series(run_dirs: list[Path]) -> tuple[list[Series], list[Result]]:
    """Every series of the given runs, with `group` set, and the results that have no value yet."""
    series, unscored = [], []
    for run_dir in run_dirs:
        s, u = load_run(Path(run_dir))
        series, unscored = series + s, unscored + u
    labels = [s.label for s in series]
    for s in series:
        if labels.count(s.label) > 1:  # two runs of one name in different folders
            s.label = f"{s.run_dir.parent}/{s.label}"
    names = _distinct_names(list(dict.fromkeys(s.first(s.tasks[0]).group_key for s in series)))
    for s in series:
        s.group = names[s.first(s.tasks[0]).group_key]
    return series, unscored


def groups(series: list[Series]) -> dict[str, list[Series]]:
    out: dict[str, list[Series]] = {}
    for s in series:
        out.setdefault(s.group, []).append(s)
    return out


# ------------------------------------------------------------------------------------------------ numbers


def domain_tasks(s: Series, in_domain: bool) -> list[str]:
    """The series' tasks in one domain's average (higher-is-better reasoning percentages)."""
    return [t for t in s.tasks if s.averaged(t) and s.in_domain(t) == in_domain]


def average(s: Series, in_domain: bool) -> dict[int, Point]:
    """Mean over the series' averaged tasks of one domain, at each step where all of them have a result. Its
    standard error treats the tasks as independent: sqrt(sum se^2) / n."""
    tasks = domain_tasks(s, in_domain)
    curves = [s.curve(t) for t in tasks]
    out = {}
    for step in s.steps:
        points = [c[step] for c in curves if step in c]
        if tasks and len(points) == len(tasks):
            ses = [se for _, se in points]
            se = None if None in ses else math.sqrt(sum(x ** 2 for x in ses)) / len(ses)
            out[step] = (sum(v for v, _ in points) / len(points), se)
    return out


def gaps(s: Series) -> dict[str, list[int]]:
    """{task: steps with a checkpoint or another task's result, but no result for this task}."""
    expected = set(s.steps) | set(s.checkpoint_steps) | {0}
    return {t: sorted(expected - set(s.curve(t))) for t in s.tasks if expected - set(s.curve(t))}


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
                   f"below base ({v:.1f} vs {b:.1f}): the run may be under-optimized (the paper's dips recover "
                   f"only with longer training).")
    if len(after) > 1:
        prev = after[-2]
        p, pse = avg[prev]
        pairs = domain_pairs(s, False, prev, last)
        if pairs:  # a paired bootstrap over the questions: sound at 0% too, where a binomial s.e. is 0
            _, lo, hi = (100 * x for x in stratified_bootstrap(pairs))
            rising, why = lo > 0, f"a 95% paired-bootstrap interval of the change [{lo:+.1f}, {hi:+.1f}] above 0"
        else:  # a task without per-question scores (judged): a normal 95% interval from the averages' s.e.
            rising = v - p > 1.96 * math.sqrt((se or 0) ** 2 + (pse or 0) ** 2)
            why = "more than 1.96 standard errors of the change"
        if rising:
            out.append(f"{s.label}: the out-of-domain average is still rising at the last checkpoint (step "
                       f"{prev} -> {last}: {p:.1f} -> {v:.1f}, {why}): the run may be under-optimized.")
    return out


def domain_pairs(s: Series, in_domain: bool, a: int, b: int) -> list[tuple[dict, dict]] | None:
    """One ({question: score at step a}, {question: score at step b}) per task of the domain's average, for
    rsft.stats.stratified_bootstrap; None when a task has no per-question scores (no samples file, a judged task)
    or other questions at the two steps, so nothing can be paired."""
    pairs = []
    for task in domain_tasks(s, in_domain):
        ra, rb = s.result(task, a), s.result(task, b)
        ia, ib = ra and ra.items(), rb and rb.items()
        if not ia or not ib or set(ia) != set(ib):
            return None
        pairs.append((ia, ib))
    return pairs or None


# ------------------------------------------------------------------------------------------------ the paper

BLOCK_KEYS = {"table", "source", "model", "data", "steps"}


def short_name(name: str) -> str:
    """The last path component without a data-file extension, lower case: the unit of matching."""
    last = re.split(r"[/\\]", name.rstrip("/\\"))[-1]
    return re.sub(r"\.(jsonl|json|parquet)$", "", last).lower()


@functools.lru_cache(maxsize=1)
def paper_data() -> dict:
    return yaml.safe_load(PAPER_FILE.read_text())


def paper_blocks(model: str, data: str) -> list[dict]:
    """The paper's tables for this base model trained on this dataset, with the model's base row; [] when the
    paper has no such setting."""
    blocks = [b for b in paper_data()["blocks"] if short_name(b["model"]) == short_name(model)]
    trained = [b for b in blocks if b["data"] != "any" and short_name(b["data"]) == short_name(data)]
    return [b for b in blocks if b["data"] == "any"] + trained if trained else []


def paper_points(model: str, data: str) -> dict[tuple[str, int], tuple[float, str]]:
    """{(task, step): (percent, "Table N [source]")} of the matching paper setting."""
    out = {}
    for block in paper_blocks(model, data):
        for task in set(block) - BLOCK_KEYS:
            for step, value in zip(block["steps"], block[task]):
                out[(task, step)] = (value, f"{block['table']} {block['source']}")
    return out


def score_line(out_dir: Path, tasks) -> str:
    """One line of a model's scores: value (and the strict score where it differs), or why a task has none."""
    from rsft.rundir import read_json, result_path

    parts = []
    for task in tasks:
        r = read_json(result_path(out_dir, task))
        if r is None or r.get("value") is None:
            parts.append(f"{task} {'judging pending' if r is None or r.get('judge') else 'n/a'}")
            continue
        scale, unit = (100, "%") if r.get("metric") != "mean_reward" else (1, "")
        strict = r.get("strict")
        extra = f" (strict {scale * strict:.1f})" if strict is not None and strict != r["value"] else ""
        parts.append(f"{task} {scale * r['value']:.1f}{unit}{extra}")
    return ", ".join(parts)
