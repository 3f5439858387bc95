"""Will this recipe fit the GPU, and how long will it take? An estimate printed by `train.py --check`.

Memory = weights + adapter and optimizer state (computed from the model's shape) + a measured allocator overhead
+ tokens per micro-batch x bytes per token. Bytes per token follow what each backend keeps per token:
  hf (transformers + peft): float32 logits over the vocabulary (a fitted number of copies) plus one checkpointed
      hidden state per layer (bf16; float32 for QLoRA, whose peft preparation upcasts non-quantized weights);
  unsloth: chunked cross-entropy and offloaded checkpoints leave one layer's working set (fitted, x hidden size).
The one free coefficient of each and the overhead are fitted to the two lengths measured on the 1.7B shape
(rsft/planner.yaml); the 8B measurement checks the extrapolation (tests/test_planner.py).
Time = the run's tokens (padded micro-batches x steps) / tokens per second, where tokens per second is the H200's
measured fraction of peak FLOP/s at that sequence length, times the target card's datasheet FLOP/s, over the
model's FLOPs per token. Full fine-tuning has no measurement: it uses hf LoRA's activation figures and 8 bytes of
state per weight (bf16 weights, grads and AdamW moments), and is marked as unmeasured.
The card table (rsft/planner.yaml: memory, FLOP/s, bandwidth) and the model's shape (its bytes and FLOPs per token)
are here too; the evaluation's plan (`evaluate.py --estimate`, planned by bandwidth) reads them from here:
rsft/eval_planner.py.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml

from rsft.errors import UserError

DATA_FILE = Path(__file__).with_name("planner.yaml")
GIB = 2**30
CUDA_CONTEXT_GB = 0.5  # the CUDA context and kernels, outside the allocator's peak


@dataclass(frozen=True)
class Shape:
    hidden: int
    intermediate: int
    layers: int
    q_dim: int
    kv_dim: int
    vocab: int
    tied: bool

    def modules(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer in one decoder block, by peft target-module name."""
        h, i = self.hidden, self.intermediate
        return {"q_proj": (h, self.q_dim), "k_proj": (h, self.kv_dim), "v_proj": (h, self.kv_dim),
                "o_proj": (self.q_dim, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def block_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.modules().values())

    @property
    def embed_params(self) -> int:  # input embedding + a separate lm_head unless tied
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def lora_params(self, r: int, targets) -> int:
        return self.layers * sum(r * (a + b) for name, (a, b) in self.modules().items() if name in targets)

    @property
    def kv_bytes_per_token(self) -> int:  # bf16 keys and values of every layer
        return 2 * self.layers * self.kv_dim * 2

    def decode_flops_per_token(self, context: float) -> float:
        """Forward FLOPs of one generated token after `context` tokens: linear layers, lm_head, attention."""
        return 2 * (self.block_params + self.vocab * self.hidden) + 4 * self.layers * self.q_dim * context

    def flops_per_token(self, seq_len: float) -> float:
        """Forward FLOPs x 3 (forward, recomputation, backward): linear layers, lm_head, causal attention."""
        linear = 2 * (self.block_params + self.vocab * self.hidden)
        attention = 2 * self.layers * self.q_dim * seq_len
        return 3 * (linear + attention)


def shape_from_config(cfg) -> Shape:
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return Shape(hidden=cfg.hidden_size, intermediate=cfg.intermediate_size, layers=cfg.num_hidden_layers,
                 q_dim=heads * head_dim, kv_dim=getattr(cfg, "num_key_value_heads", heads) * head_dim,
                 vocab=cfg.vocab_size, tied=bool(getattr(cfg, "tie_word_embeddings", False)))


def known_shape(name: str) -> Shape:
    """A shape of rsft/model_shapes.py by its short name (qwen3-1.7b) or the Hub id of the model it is."""
    from transformers import Qwen3Config

    from rsft.model_shapes import HUB_IDS, QWEN3_SHAPES, QWEN3_VOCAB

    short = next((k for k, ids in HUB_IDS.items() if name in ids), name)
    if short not in QWEN3_SHAPES:
        raise KeyError(name)
    return shape_from_config(Qwen3Config(vocab_size=QWEN3_VOCAB, **QWEN3_SHAPES[short]))


def model_shape(name_or_path: str, revision: str | None = None, trust_remote_code: bool = False) -> Shape | None:
    """A model's shape: a known Hub id offline, else its config.json (local, cached or online)."""
    try:
        return known_shape(name_or_path)
    except KeyError:
        pass
    from transformers import AutoConfig

    from rsft.models import resolve_model_path

    try:
        cfg = AutoConfig.from_pretrained(resolve_model_path(name_or_path), revision=revision,
                                         trust_remote_code=trust_remote_code)
        return shape_from_config(getattr(cfg, "text_config", cfg))
    except Exception:  # offline and not cached, or not a decoder config: no estimate, said by the caller
        return None


def recipe_shape(recipe) -> Shape | None:
    return model_shape(recipe.model.name_or_path, recipe.model.revision, recipe.model.trust_remote_code)


@lru_cache(maxsize=1)
def data() -> dict:
    return yaml.safe_load(DATA_FILE.read_text())


def gpu(name: str) -> dict:
    gpus, name = data()["gpus"], name.lower()
    if name not in gpus:
        raise UserError(f"unknown GPU '{name}'; known: {', '.join(gpus)}")
    return {"name": name, **gpus[name]}


def detect_gpu() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    dev = torch.cuda.get_device_name(0)
    mem = torch.cuda.get_device_properties(0).total_memory / GIB
    for name, g in data()["gpus"].items():  # most specific first in the file: "H100 PCIe" before "H100"
        if re.search(rf"\b{re.escape(g['match'])}\b", dev):  # "L4" is not "L40S"
            return {**g, "name": dev, "memory_gb": mem}
    # an unlisted card: its real memory, and (unknown speed) the lowest listed FLOP/s and bandwidth
    cards = data()["gpus"].values()
    return {"name": dev, "memory_gb": mem, "tflops": min(g["tflops"] for g in cards),
            "bandwidth_gbs": min(g["bandwidth_gbs"] for g in cards),
            "bf16": torch.cuda.get_device_capability(0)[0] >= 8,  # native bf16 only (a T4 emulates it)
            "match": dev, "speed_guessed": True}


# ------------------------------------------------------------------------------------------------ memory


def _state_bytes(shape: Shape, backend: str, finetune: str, lora_params: int) -> float:
    if finetune == "full":
        return (shape.block_params + shape.embed_params) * 8.0
    adapters = lora_params * 16.0  # float32 weight, grad, two AdamW moments
    if finetune == "lora":
        return (shape.block_params + shape.embed_params) * 2.0 + adapters
    # qlora: NF4 (4 bits) + double-quantized absmax per 64 weights ~ 0.516 bytes; embeddings stay 16-bit, and
    # peft's preparation (hf backend) upcasts them to float32
    return shape.block_params * 0.516 + shape.embed_params * (4.0 if backend == "hf" else 2.0) + adapters


def _per_token_unit(shape: Shape, backend: str, finetune: str) -> tuple[float, float]:
    """(fixed bytes per token, multiplier of the fitted coefficient) for this backend and method."""
    if backend == "unsloth":
        return 0.0, float(shape.hidden)
    ckpt = 4.0 if finetune == "qlora" else 2.0
    return ckpt * shape.hidden * shape.layers, 4.0 * shape.vocab


@lru_cache(maxsize=None)
def fitted(backend: str, finetune: str) -> tuple[tuple[int, float], ...]:
    """((segment start in tokens, coefficient), ...) through the 1.7B shape's measurements, from 0 tokens.

    Memory is piecewise linear in tokens: from the computed state at 0 tokens to each measured length in turn,
    and on past the last one with the last segment's slope. Peak memory grows faster than linearly for some
    backends (hf QLoRA: 13 GB at 4k, 87 GB at 16k), so one straight line would go negative for short rows.
    """
    key = (backend, "lora" if finetune == "full" else finetune)
    pts = sorted((m["tokens"], m["peak_memory_gb"] * GIB) for m in data()["measured"]
                 if (m["backend"], m["finetune"]) == key and m["shape"] == "qwen3-1.7b")
    if len(pts) < 2:
        raise UserError(f"no measurement for backend {backend} with {finetune} in {DATA_FILE}")
    shape = known_shape("qwen3-1.7b")
    fixed, unit = _per_token_unit(shape, *key)
    anchors = [(0, _state_bytes(shape, key[0], key[1], shape.lora_params(64, shape.modules())))] + pts
    segments = []
    for (t0, m0), (t1, m1) in zip(anchors, anchors[1:]):
        slope = (m1 - m0) / (t1 - t0)
        segments.append((t0, max(0.0, (slope - fixed) / unit)))  # never less than the fixed per-token part
    return tuple(segments)


def peak_memory_gb(shape: Shape, backend: str, finetune: str, tokens: int, r: int, targets) -> float:
    """GiB the allocator peaks at, plus the CUDA context."""
    segments = fitted(backend, finetune)
    fixed, unit = _per_token_unit(shape, backend, "lora" if finetune == "full" else finetune)
    total = _state_bytes(shape, backend, finetune, shape.lora_params(r, targets))
    ends = [t for t, _ in segments[1:]] + [math.inf]
    for (start, coef), end in zip(segments, ends):
        if tokens > start:
            total += (min(tokens, end) - start) * (fixed + coef * unit)
    return total / GIB + CUDA_CONTEXT_GB


# ------------------------------------------------------------------------------------------------ speed


def tokens_per_s(shape: Shape, backend: str, finetune: str, seq_len: float, tflops: float) -> float:
    """The H200's measured fraction of peak at this length (log-interpolated), on a card with `tflops`."""
    key = (backend, "lora" if finetune == "full" else finetune)
    ref, peak = known_shape("qwen3-1.7b"), data()["gpus"][data()["measured_on"]]["tflops"] * 1e12
    pts = sorted((m["tokens"], m["tokens_per_s"] * ref.flops_per_token(m["tokens"]) / peak)
                 for m in data()["measured"] if (m["backend"], m["finetune"]) == key and m["shape"] == "qwen3-1.7b")
    x = min(max(math.log(seq_len), math.log(pts[0][0])), math.log(pts[-1][0]))
    (t0, e0), (t1, e1) = pts[0], pts[-1]
    eff = e0 + (e1 - e0) * (x - math.log(t0)) / (math.log(t1) - math.log(t0))
    if finetune == "full":
        eff *= 3 / 4  # weight gradients: a fourth pass over every weight
    return eff * tflops * 1e12 / shape.flops_per_token(seq_len)


# ------------------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Workload:
    """What the run asks of the card: derived from the recipe and its tokenized data."""

    backend: str  # unsloth | hf (auto resolves to unsloth on a GPU with requirements-gpu.txt installed)
    finetune: str
    micro_tokens: int  # the largest micro-batch: micro-batch size x its longest row
    mean_seq: float  # mean tokens per row
    total_tokens: int  # padded tokens over the whole run
    r: int
    targets: tuple


def workload(recipe, examples: list, plan, backend: str | None = None) -> Workload:
    b = recipe.train.per_device_train_batch_size
    lengths = [len(e.input_ids) for e in examples]
    padded = [b * max(lengths[i:i + b]) for i in range(0, plan.steps_per_epoch * plan.global_batch, b)]
    per_step = sum(padded) / max(1, plan.steps_per_epoch)
    be = backend or auto_backend(recipe.model.backend)[0]
    return Workload(backend=be, finetune=recipe.model.finetune, micro_tokens=max(padded, default=0),
                    mean_seq=sum(lengths) / max(1, len(lengths)), total_tokens=int(per_step * plan.total_steps),
                    r=recipe.lora.r, targets=tuple(recipe.lora.target_modules))


def auto_backend(asked: str) -> tuple[str, str]:
    """The backend training would use on a GPU machine with this environment, and why (as models.pick_training_backend)."""
    import importlib.util

    if asked != "auto":
        return asked, "asked for by the recipe"
    if importlib.util.find_spec("unsloth") is not None:
        return "unsloth", "auto, unsloth installed"
    return "hf", "auto, unsloth not installed here (pip install -r requirements-gpu.txt for it)"


def estimate(shape: Shape, w: Workload, card: dict) -> tuple[float, float]:
    """(peak GiB, hours) of workload w on card."""
    mem = peak_memory_gb(shape, w.backend, w.finetune, w.micro_tokens, w.r, w.targets)
    tps = tokens_per_s(shape, w.backend, w.finetune, w.mean_seq, card["tflops"])
    return mem, w.total_tokens / tps / 3600


def knobs(shape: Shape, w: Workload, card: dict, max_length: int, batch: int) -> list[str]:
    """Recipe changes that would make w fit card, each with its estimate."""
    tries = []
    if w.backend != "unsloth":
        tries.append(("model.backend=unsloth", replace(w, backend="unsloth")))
    if w.finetune != "qlora":
        tries.append(("model.finetune=qlora", replace(w, finetune="qlora")))
    if w.backend != "unsloth" and w.finetune != "qlora":
        tries.append(("model.backend=unsloth model.finetune=qlora", replace(w, backend="unsloth", finetune="qlora")))
    if batch > 1:
        tries.append((f"train.per_device_train_batch_size=1 (and gradient_accumulation_steps x{batch})",
                      replace(w, micro_tokens=w.micro_tokens // batch)))
    out = []
    for label, w2 in tries:
        mem, _ = estimate(shape, w2, card)
        if mem <= card["memory_gb"]:
            out.append(f"{label} (~{mem:.1f} GiB)")
    for length in (16384, 12288, 8192, 4096, 2048):  # a shorter max length, as long as possible
        if length < max_length:
            mem, _ = estimate(shape, replace(w, micro_tokens=min(w.micro_tokens, batch * length)), card)
            if mem <= card["memory_gb"]:
                out.append(f"data.max_length={length} (~{mem:.1f} GiB; longer rows truncated)")
                break
    return out


def plan_lines(recipe, examples: list, plan, gpu_name: str | None = None, backend: str | None = None) -> list[str]:
    """The --check lines: the named or detected card, else a table of common cards."""
    shape = recipe_shape(recipe)
    if shape is None:
        return [f"estimate        none: the shape of {recipe.model.name_or_path} is unknown offline "
                "(its config.json could not be read)"]
    w = workload(recipe, examples, plan, backend)
    cards = [gpu(gpu_name)] if gpu_name else ([c] if (c := detect_gpu()) else
                                                [gpu(n) for n in data()["table_gpus"]])
    caveat = " (full fine-tuning: no measurement, rough)" if w.finetune == "full" else ""
    why = "given" if backend else auto_backend(recipe.model.backend)[1]
    lines = [f"estimate        backend {w.backend} ({why}), largest micro-batch {w.micro_tokens:,} tokens, "
             f"{w.total_tokens:,} tokens in all; from measured H200 figures (rsft/planner.yaml){caveat}"]
    for card in cards:
        mem, hours = estimate(shape, w, card)
        fits = mem <= card["memory_gb"]
        dtype = "" if card["bf16"] else ", no bf16: trains in float16"
        took = f"{hours:,.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
        speed = " (speed unknown: the slowest listed card's assumed)" if card.get("speed_guessed") else ""
        lines.append(f"  {card['name']:<12} peak ~{mem:.1f} GiB of {card['memory_gb']:.1f}"
                     f" -> {'fits' if fits else 'WILL NOT FIT'}; ~{took}{speed}{dtype}")
        if not fits:
            fix = knobs(shape, w, card, recipe.data.max_length, recipe.train.per_device_train_batch_size)
            lines.append("    to fit: " + ("; or ".join(fix) if fix else "no single knob is enough; a larger card"))
    return lines


PAPER_ROWS = 20_480  # the paper's datasets: 80 steps of 256 rows an epoch (rsft/config.py)


def offline_plan_lines(recipe, gpu_name: str | None, why: str) -> list[str]:
    """--check's estimate when the tokenizer or the data is not on this machine (`why`): the model's known shape,
    every row at data.max_length (the worst case), data.limit rows or the paper's 20,480. [] when the model's shape
    is not known offline either."""
    from rsft.schedule import make_plan

    try:
        shape = known_shape(recipe.model.name_or_path)
    except KeyError:
        return []
    rows = recipe.data.limit or PAPER_ROWS
    plan = make_plan(recipe.train, recipe.checkpoints, rows)
    b, length = recipe.train.per_device_train_batch_size, recipe.data.max_length
    w = Workload(backend=auto_backend(recipe.model.backend)[0], finetune=recipe.model.finetune,
                 micro_tokens=b * length, mean_seq=length, total_tokens=b * length * plan.total_steps
                 * recipe.train.gradient_accumulation_steps, r=recipe.lora.r, targets=tuple(recipe.lora.target_modules))
    cards = [gpu(gpu_name)] if gpu_name else [gpu(n) for n in data()["table_gpus"]]
    source = "data.limit" if recipe.data.limit else "the paper's datasets' size"
    lines = [f"offline         {why}",
             f"estimate        assumed: every row at data.max_length ({length:,} tokens, the worst case), {rows:,} "
             f"rows ({source}), {plan.total_steps} steps; the model's known shape; backend {w.backend}"]
    for card in cards:
        mem, hours = estimate(shape, w, card)
        took = f"{hours:,.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
        lines.append(f"  {card['name']:<12} peak ~{mem:.1f} GiB of {card['memory_gb']:.1f} -> "
                     f"{'fits' if mem <= card['memory_gb'] else 'WILL NOT FIT'}; at most ~{took}")
    return lines
