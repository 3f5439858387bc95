"""What can be evaluated: presets (sampling and size), suites (lists of tasks), and each task's group.

Pure: no lm-eval, no torch. rsft.config validates a recipe's eval section against it; evaluate.py, the worker and
the report read the same names. A task's own facts (prompt, data, answer kind, group) live in its folder under
rsft/tasks/; this module only reads the group from the task's YAML.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import yaml

from rsft.errors import UserError
from rsft.tasks import TASKS_DIR


@dataclass(frozen=True)
class Preset:
    """Sampling and size of an evaluation; recorded with every result. None = the task's own (paper) value."""

    temperature: float | None = None  # None: the task's own (0.6 for most, 0.7 for AlpacaEval)
    top_p: float | None = None  # None: the task's own (0.95 for most, 0.9 for AlpacaEval, 1.0 for safety)
    max_gen_toks: int | None = None  # a cap on the task's own (32,768 for most, 16,384 for HEx-PHI, AlpacaEval)
    repeats: int | None = None  # samples per question (avg@k); None = the paper's k per task
    limit: int | None = None  # first N questions of each task
    in_domain_limit: int | None = None  # first N questions of each in-domain task, when it differs from limit
    seed: int = 1234
    task_max_gen_toks: dict[str, int] = field(default_factory=dict)  # {task: a lower cap} for the tasks named
    end_repeats: bool = False  # end a reply once it only repeats itself (rsft/repetition.py)

    def max_gen_toks_for(self, task: str, own: int | None) -> int | None:
        """The new-token cap of `task` (the kit's name) whose own cap is `own`: the lowest of the task's own, the
        preset's and the preset's for that task; None if none is set."""
        caps = [c for c in (own, self.max_gen_toks, self.task_max_gen_toks.get(task)) if c is not None]
        return min(caps) if caps else None

    def limit_for(self, group: str) -> int | None:
        """The first N questions a task of `group` ("in_domain", "ood", ...) takes; None: all of them."""
        return self.in_domain_limit if self.in_domain_limit is not None and group == "in_domain" else self.limit


PRESETS = {
    "paper": Preset(),  # the paper's protocol (PAPER.md section 1)
    # one 16-24 GB GPU: one sample per question, 8k-token budget, 200 questions per task
    "consumer": Preset(max_gen_toks=8192, repeats=1, limit=200),
    # the embedded default on 2 CPU cores: the paper's sampling, one sample, 100 held-out Countdown puzzles (a
    # 15-point change is outside the noise) and 50 questions of each out-of-domain task, 192 new tokens (the
    # longest training response is 172). Sampling, not greedy: the 135M model's greedy replies repeat one dead end
    # until the cap (Countdown 10% greedy vs 14% sampled, one 4-dead-end checkpoint; bench/RESULTS.md).
    # Two rules that only save time, each checked on every step's replies of a quickstart run (bench/bench_caps.py,
    # bench/RESULTS.md): capitals capped at 64 new tokens (the base answers in 14 on average, 61 at most; the
    # trained model's Countdown-style replies score 0 at any cap), and a reply that only repeats itself ends
    # (rsft/repetition.py; up to 39 of 100 replies a step). Neither changed a score at any step of that run.
    "quickstart": Preset(temperature=0.6, top_p=0.95, max_gen_toks=192, repeats=1, limit=50, in_domain_limit=100,
                         task_max_gen_toks={"capitals": 64}, end_repeats=True),
}

SUITES = {
    "paper": ("math500", "aime24", "livecodebench", "gpqa_diamond", "mmlu_pro", "ifeval", "halueval"),
    "math": ("math500", "aime24"),
    # data made locally; out-of-domain tasks on which the 135M base scores well above 0 (28% and 76% at step 0
    # sampled, 34% and 86% greedy; bench/RESULTS.md), so that a drop, a retention or a gain can be seen:
    # arithmetic in words (near Countdown) and knowledge (far from it)
    "quickstart": ("countdown", "word_problems", "capitals"),
    # every task whose data is made locally: the quickstart's, reasoning-gym's arithmetic and logic puzzles and
    # HumanEval (its package's file); a 135M model scores ~0 on the last three (bench/RESULTS.md)
    "embedded": ("countdown", "word_problems", "capitals", "basic_arithmetic", "knights_knaves", "humaneval"),
    "safety": ("hexphi", "strongreject", "xstest"),  # both failure directions; judged by the rubric judge
    "judged": ("alpacaeval", "truthfulqa_gen", "hexphi", "strongreject", "xstest"),  # every judge-scored task
}

# A task's `metadata.group`, written into each of its results, so that an old result keeps the meaning it had:
# in_domain (the training domain: math, countdown), ood (out-of-domain reasoning: code, science, knowledge, logic),
# general (general capability, the paper's own group: reported apart, outside the out-of-domain reasoning average,
# so a drift in instruction following does not read as a reasoning dip) and safety (lower is better).
GROUPS = ("in_domain", "ood", "general", "safety")


class _TaskYaml(yaml.SafeLoader):
    """Reads a task YAML as data: lm-eval's `!function utils.x` tags become their text, nothing is imported."""


_TaskYaml.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


# lm-eval's name of a task is the kit's with this prefix, so none can replace one of lm-eval's own (its aime24,
# humaneval, ifeval, mmlu_pro, truthfulqa_gen differ from these); each suite is an lm-eval group rsft_SUITE.
LM_EVAL_PREFIX = "rsft_"


def lm_eval_name(task: str) -> str:
    return LM_EVAL_PREFIX + task


def task_names() -> list[str]:
    return sorted(p.name for p in TASKS_DIR.iterdir() if p.is_dir() and (p / f"{p.name}.yaml").exists())


@functools.lru_cache(maxsize=None)
def task_metadata(task: str) -> dict:
    """The `metadata:` block of rsft/tasks/TASK/TASK.yaml (version, group, answer, judge)."""
    path = TASKS_DIR / task / f"{task}.yaml"
    if not path.exists():
        raise UserError(f"unknown task {task}; tasks: {', '.join(task_names())}")
    meta = (yaml.load(path.read_text(), Loader=_TaskYaml) or {}).get("metadata") or {}
    if meta.get("group") not in GROUPS:
        raise UserError(f"{path}: metadata.group must be one of {', '.join(GROUPS)}, got {meta.get('group')!r}")
    return meta


def task_group(task: str) -> str:
    return task_metadata(task)["group"]


def suite_tasks(suite: str) -> tuple[str, ...]:
    if suite in SUITES:
        return SUITES[suite]
    names = tuple(s.strip() for s in suite.split(",") if s.strip())
    unknown = [n for n in names if n not in task_names()]
    if unknown or not names:
        raise UserError(f"unknown suite or task {', '.join(unknown) or repr(suite)}; suites: {', '.join(SUITES)}; "
                        f"tasks: {', '.join(task_names())}")
    return names


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; presets: {', '.join(PRESETS)}")
    return PRESETS[name]
