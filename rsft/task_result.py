"""The per-task result file, RUN/eval/PRESET/stepNNNNN/TASK.json: one typed record, read and written here.

The evaluation worker (rsft/eval_worker.py write_result) builds it from lm-eval's metrics; for a judge-scored task
it writes it as TASK.gen.json, and the judging phase (rsft/judges/phase.py finalize) adds the scores and the
`judging` part and writes TASK.json. The report (rsft/results.py), the model card (rsft/hub.py) and evaluate.py's
score line read it. Values are fractions, except a metric with its own unit (RAW_METRICS).

Schema 2 (`"schema_version": 2`) nests what the judges add under "judging". A file without a schema version is
schema 1, the judges' keys at the top level; it reads into the same record.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rsft.errors import UserError
from rsft.rundir import write_json_atomic

SCHEMA_VERSION = 2
RAW_METRICS = {"mean_reward"}  # a reward model's score (AlpacaEval): its own unit, not a fraction
REQUIRED = ("task", "step", "value", "preset_name", "preset", "grader_version")


@dataclass(frozen=True)
class Judging:
    """What the judging phase adds to a judge-scored task: who judged, and what was left unjudged."""

    judges: dict | None = None  # role -> {"id": judge model (and endpoint), "prompt_version": ...}
    complete: bool | None = None  # False: samples left unjudged by an error, asked again by the next run
    unjudged: int | None = None  # samples of value's scoring without a usable verdict (truncated, unparseable, error)
    unjudged_by_status: dict = field(default_factory=dict)  # {"unparseable": 2, "error": 1, ...}
    unjudged_samples: list = field(default_factory=list)  # {doc_id, sample, role, status, reason} each
    strict_unjudged_by_status: dict = field(default_factory=dict)  # the same for the strict scoring
    worst_case_value: float | None = None  # the rate with every unjudged sample counted as a failure
    strict_worst_case_value: float | None = None
    details: dict = field(default_factory=dict)  # the kind's own numbers: score counts, refusal kinds, rewards, ...


# schema 1 wrote the judging part at the top level: its keys, and Judging's name for each
V1_JUDGING = {"judges": "judges", "judging_complete": "complete", "unjudged": "unjudged",
              "unjudged_by_status": "unjudged_by_status", "unjudged_samples": "unjudged_samples",
              "strict_unjudged_by_status": "strict_unjudged_by_status", "worst_case_value": "worst_case_value",
              "strict_worst_case_value": "strict_worst_case_value"}
V1_DETAILS = ("mean_score", "score_counts", "full_refusal_rate", "partial_refusal_rate", "min_reward", "max_reward",
              "truthful", "truthful_stderr", "truthful_worst_case", "truthful_and_informative")


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """One task of one model (a checkpoint, or the base at step 0) under one preset."""

    task: str
    step: int
    value: float | None  # the preset's scoring (the paper's reading for `paper`); None: judging not finished
    preset_name: str
    preset: dict  # the preset's settings (rsft.catalogue.Preset)
    grader_version: int  # rsft.grading.GRADER_VERSION: results compare only within one
    metric: str | None = None  # "acc"; a judged task's rate ("attack_success_rate", "mean_reward", ...)
    higher_is_better: bool = True  # False: an attack-success or over-refusal rate
    stderr: float | None = None
    strict: float | None = None  # the kit's reasoning-correct scoring: an answer only after a closed </think>
    strict_stderr: float | None = None
    truncated_rate: float | None = None  # responses whose thinking never closed
    no_answer_rate: float | None = None  # responses with no final answer (tasks that ask for one)
    mean_response_tokens: float | None = None
    n: int | None = None  # questions
    k: int | None = None  # samples per question
    model: str | None = None  # the base model
    adapter: str | None = None  # the checkpoint's adapter folder; None for the base
    task_version: int | None = None  # the task YAML's metadata.version: its scoring
    lm_eval_version: str | None = None
    backend: str | None = None  # "hf" or "vllm"
    group: str | None = None  # rsft.catalogue GROUPS: in_domain, ood, general, safety
    in_domain: bool | None = None
    generation_kwargs: dict = field(default_factory=dict)
    sandbox: str | None = None  # code tasks only: the sandbox's mechanism ("" unrecorded)
    extra_metrics: dict = field(default_factory=dict)  # e.g. IFEval's loose accuracies, the ungradeable share
    judge: str | None = None  # a judge-scored task's judge kind (rsft.judges.rubrics.KINDS)
    judging: Judging | None = None  # set by the judging phase

    @property
    def scale(self) -> float:
        """100 for a fraction shown in percent, 1 for a metric with its own unit."""
        return 1.0 if self.metric in RAW_METRICS else 100.0

    @classmethod
    def from_dict(cls, raw: dict, **more):
        """The record of a file's JSON object, of either schema; `more`: a subclass's own fields."""
        names = {f.name for f in dataclasses.fields(TaskResult)} - {"judging"}
        kwargs = {k: v for k, v in raw.items() if k in names}
        if raw.get("schema_version", 1) >= 2:
            judging = raw.get("judging")
            unknown = set(judging or {}) - {f.name for f in dataclasses.fields(Judging)}
            if unknown:
                raise ValueError(f"its judging part holds {', '.join(sorted(unknown))}, unknown to schema "
                                 f"{SCHEMA_VERSION}")
            kwargs["judging"] = None if judging is None else Judging(**judging)
        elif any(k in raw for k in V1_JUDGING):
            kwargs["judging"] = Judging(**{new: raw[old] for old, new in V1_JUDGING.items() if old in raw},
                                        details={k: raw[k] for k in V1_DETAILS if k in raw})
        for key in ("generation_kwargs", "extra_metrics"):  # written as null by nobody, but absent in old files
            kwargs[key] = kwargs.get(key) or {}
        return cls(**kwargs, **more)

    def to_dict(self) -> dict:
        out = {"schema_version": SCHEMA_VERSION}
        for f in dataclasses.fields(TaskResult):
            v = getattr(self, f.name)
            if f.name in ("sandbox", "judge", "judging") and v is None or f.name == "extra_metrics" and not v:
                continue  # present only where they apply
            out[f.name] = dataclasses.asdict(v) if isinstance(v, Judging) else v
        return out

    @classmethod
    def read(cls, path: Path, /, **more):
        """The result at `path`, or a one-line UserError naming it and the fix when it is damaged or holds what the
        evaluation never writes (an infinite value, a fraction over 100%, a step that is not a whole number)."""
        fix = "delete it and rerun evaluate.py on that step to rewrite it"
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{path} is not valid JSON ({e}); {fix}") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path} is not an evaluate.py result (a JSON {type(raw).__name__}, not an object); {fix}")
        missing = set(REQUIRED) - set(raw)
        if missing:
            raise UserError(f"{path} is not an evaluate.py result (missing {', '.join(sorted(missing))}); {fix}")
        step, value = raw["step"], raw["value"]
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise UserError(f"{path}: step {step!r} is not a whole number of steps; {fix}")
        if value is not None:
            # NaN passes: the report flags it (a failed metric), where an infinite or out-of-range value is damage
            if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isinf(value):
                raise UserError(f"{path}: value {value!r} is not a finite number; {fix}")
            if raw.get("metric") not in RAW_METRICS and (value < 0 or value > 1):
                raise UserError(f"{path}: value {value!r} is not a fraction ({100 * value:g}%, outside 0-100%); "
                                f"{fix}")
        try:
            return cls.from_dict(raw, **more)
        except (TypeError, ValueError) as e:  # a judging part that is not an object, or holds unknown keys
            raise UserError(f"{path} is not an evaluate.py result ({e}); {fix}") from None

    def write(self, path: Path, clean=None) -> None:
        """Atomically (rsft.rundir.write_json_atomic): a reader never sees half a file. `clean`: a function every
        value passes through first (the judging phase's key scrubber)."""
        write_json_atomic(path, clean(self.to_dict()) if clean else self.to_dict())
