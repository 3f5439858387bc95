"""Typed, frozen hand-offs from evaluate.py to the processes it starts (the lm-eval worker, the judging phase).

Built and validated in the parent, before any model loads; written to a JSON file the child reads back into the
same class (`from_json` checks every field again). Defaults live here only.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from rsft.catalogue import Preset, task_names
from rsft.errors import UserError

BACKENDS = ("hf", "vllm")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class ModelSpec:
    """What to load: a base (Hub id or local folder), optionally a LoRA adapter on it."""

    base: str
    revision: str | None = None
    subfolder: str | None = None  # e.g. step640 in the paper's released repositories
    adapter: str | None = None  # a LoRA adapter folder (not merged)
    lora_rank: int | None = None  # the adapter's r (vLLM needs a max_lora_rank that holds it)
    trust_remote_code: bool = False  # run the model repository's own code: only when the recipe or flag says so
    dtype: str = "auto"

    @property
    def tokenizer(self) -> str:
        return self.adapter or self.base  # a run's checkpoints carry the tokenizer they were trained with

    @property
    def tokenizer_subfolder(self) -> str:
        return "" if self.adapter else (self.subfolder or "")


@dataclass(frozen=True)
class WorkerSpec:
    """One model on some tasks: `python -m rsft.eval_worker SPEC.json`."""

    model: ModelSpec
    step: int
    tasks: tuple[str, ...]
    preset_name: str
    preset: Preset
    data_dir: str
    out_dir: str
    backend: str = "hf"
    device: str = "cpu"
    batch_size: int = 8  # hf backend: prompts per generate call
    tensor_parallel_size: int = 1  # vLLM: GPUs per model
    sandbox: str = ""  # the code sandbox's mechanism, recorded with code tasks' results

    def __post_init__(self):
        _check(self.backend in BACKENDS, f"backend must be one of {BACKENDS}, got {self.backend!r}")
        _check(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        _check(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}")
        _check(self.tensor_parallel_size >= 1, f"tensor parallel size must be at least 1, got "
                                               f"{self.tensor_parallel_size}")
        _check(self.step >= 0, f"step must be >= 0, got {self.step}")
        _check(bool(self.tasks), "no tasks to evaluate")
        unknown = set(self.tasks) - set(task_names())
        _check(not unknown, f"unknown tasks {sorted(unknown)}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        d = json.loads(text)
        return cls(**{**d, "model": ModelSpec(**d["model"]), "preset": Preset(**d["preset"]),
                      "tasks": tuple(d["tasks"])})


@dataclass(frozen=True)
class JudgeSpec:
    """The judging phase over several models' outputs: `python -m rsft.judges SPEC.json`."""

    out_dirs: tuple[str, ...]
    tasks: tuple[str, ...]
    judges: dict = field(default_factory=dict)  # role -> model (rsft.judges.phase.resolve_judges)
    endpoint: str = ""
    device: str = "cpu"
    batch_size: int = 8

    def __post_init__(self):
        _check(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        _check(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}")
        _check(bool(self.endpoint), "no judge endpoint")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JudgeSpec:
        d = json.loads(text)
        return cls(**{**d, "out_dirs": tuple(d["out_dirs"]), "tasks": tuple(d["tasks"])})


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def read_spec(cls, path: str):
    try:
        return cls.from_json(Path(path).read_text())
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise UserError(f"{path}: not a {cls.__name__} ({type(e).__name__}: {e})") from None
