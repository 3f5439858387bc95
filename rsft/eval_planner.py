"""How much will `evaluate.py` generate, and how long will it take? The plan printed by `evaluate.py --estimate`.

Tokens: per task, its questions (its local data, else the benchmark's published size) x the preset's repeats x its
cap (max_gen_toks), every response counted at its cap: the dip drives replies there, so this is the worst case.
Time: a measured generation speed (rsft/planner.yaml's `generation`), scaled to the card and model by the ratio of
their decoding ceilings; without a measurement, the ceiling itself. Decoding is planned by bytes, not FLOPs
(decode_ceiling): each step reads the weights and every running reply's keys and values, and the key/value room
beside the weights bounds how many replies run at once.
The card table and the model's shape are training's too: rsft/planner.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from rsft.planner import CUDA_CONTEXT_GB, GIB, Shape, data, detect_gpu, gpu, known_shape, model_shape


@dataclass(frozen=True)
class TaskLoad:
    """What one model's evaluation of one task generates: questions x repeats responses of at most `cap` tokens."""

    task: str
    questions: int | None  # None: unknown until evaluate.py builds the task's local data
    repeats: int
    cap: int  # max_gen_toks: the task's own, capped by the preset
    skipped: str | None = None  # why evaluate.py will skip it (no data, and no known size)
    not_here: str | None = None  # its data is not downloaded yet: counted at the benchmark's published size

    @property
    def tokens(self) -> int:
        return (self.questions or 0) * self.repeats * self.cap


def _task_config(path: Path) -> dict:
    """A task YAML with its `include:` chain resolved as lm-eval does: the including file's keys replace the
    included file's (top level)."""
    from rsft.catalogue import _TaskYaml

    cfg = yaml.load(path.read_text(), Loader=_TaskYaml) or {}
    if "include" in cfg:
        cfg = {**_task_config(path.parent / cfg.pop("include")), **cfg}
    return cfg


def task_load(task: str, p, data_dir: Path) -> TaskLoad:
    """Task `task` under preset `p` (rsft.catalogue.Preset), as rsft/eval_worker.py will run it."""
    from rsft.tasks import TASKS_DIR
    from rsft.catalogue import task_group
    from rsft.task_data import is_local, missing, published_size

    cfg = _task_config(TASKS_DIR / task / f"{task}.yaml")
    repeats = p.repeats if p.repeats is not None else int(cfg.get("repeats", 1))
    limit = p.limit_for(task_group(task))
    cap = p.max_gen_toks_for(task, int(cfg["generation_kwargs"]["max_gen_toks"]))
    why = missing(data_dir, [task]).get(task)
    if why is None:
        with open(Path(data_dir) / task / "test.jsonl") as f:
            n = sum(1 for line in f if line.strip())
        return TaskLoad(task, min(n, limit) if limit else n, repeats, cap)
    if is_local(task):  # built by evaluate.py before the first model
        return TaskLoad(task, limit, repeats, cap)
    size = published_size(task)
    if size is not None:
        return TaskLoad(task, min(size, limit) if limit else size, repeats, cap, not_here=why)
    return TaskLoad(task, 0, repeats, cap, skipped=why)


PROMPT_TOKENS = 256  # a benchmark prompt in the chat template (MATH500's are ~100-300): the plan's assumption
VLLM_MAX_SEQS = 256  # vLLM's default max_num_seqs: the most sequences decoded in one step
VLLM_MEMORY_SHARE = 0.9  # vLLM's default gpu_memory_utilization


def decode_ceiling(card: dict, shape: Shape, cap: int, prompt: int = PROMPT_TOKENS) -> tuple[float, str]:
    """(tokens/s, what bounds it): the most a card can decode for replies of up to `cap` tokens, the roofline of
    vLLM-style batched decoding. Each step reads every weight once and each running sequence's keys and values; as
    many sequences run as the key/value room holds at their mean length while decoding (prompt + cap/2, the replies
    at their cap); a step costs its bytes over the card's bandwidth, or its FLOPs over its FLOP/s if that is longer.
    0 tokens/s when one reply's keys and values do not fit beside the weights."""
    weights = (shape.block_params + shape.embed_params) * 2.0
    kv = shape.kv_bytes_per_token
    context = prompt + cap / 2
    room = card["memory_gb"] * GIB * VLLM_MEMORY_SHARE - weights - CUDA_CONTEXT_GB * GIB
    if room < (prompt + cap) * kv:
        return 0.0, (f"does not fit: bf16 weights {weights / GIB:.1f} GiB leave {max(room, 0) / GIB:.1f} GiB of "
                     f"{card['memory_gb']:.0f} for keys and values; one {prompt + cap:,}-token reply needs "
                     f"{(prompt + cap) * kv / GIB:.1f} GiB")
    seqs = int(min(VLLM_MAX_SEQS, room // (context * kv)))
    by_bytes = seqs * card["bandwidth_gbs"] * 1e9 / (weights + seqs * context * kv)
    by_flops = card["tflops"] * 1e12 / shape.decode_flops_per_token(context)
    room_note = (f"; key/value room for {seqs} replies at once (~{context:,.0f} tokens each, "
                 f"{(room / GIB):.0f} GiB)" if seqs < VLLM_MAX_SEQS else "")
    if by_flops < by_bytes:
        return by_flops, f"bound by compute ({card['tflops']} TFLOP/s){room_note}"
    return by_bytes, (f"bound by memory bandwidth ({card['bandwidth_gbs']:,} GB/s: the weights and every running "
                      f"reply's keys and values read at each step){room_note}")


def generation_speed(card: dict | None, backend: str, model: str, shape: Shape | None,
                     cap: int) -> tuple[float | None, float, str]:
    """(generated tokens/s, seconds to start each model, where the figures come from) for `model` on `card` (None:
    this CPU): a measurement of rsft/planner.yaml's `generation` (a GPU one scaled by decode_ceiling's ratio
    between its card, model and cap and these), else a GPU's decode_ceiling itself; (None, 0, why) where none
    applies."""
    measured = data().get("generation") or []
    if card is None:
        m = next((m for m in measured if m["card"] == "cpu" and m["backend"] == backend and m["model"] == model), None)
        if m is None:
            return None, 0, f"no measured CPU generation speed for {model} with {backend}"
        return m["tokens_per_s"], m["per_model_s"], f"measured: {m['what']}"
    if shape is None:
        return None, 0, f"{model}'s shape is unknown offline"
    ceiling, bound = decode_ceiling(card, shape, cap)
    if ceiling == 0:
        return None, 0, bound
    m = next((m for m in measured if m["card"] != "cpu" and m["backend"] == backend), None)
    if m is None:
        return ceiling, 0, (f"the ceiling, not a measurement (no measured {backend} generation speed on a GPU yet: "
                            f"bench/bench_eval_gpu.py): {bound}")
    on = gpu(m["card"])
    ref, _ = decode_ceiling(on, known_shape(m["model"]), m["max_new_tokens"])
    tps = m["tokens_per_s"] * ceiling / ref
    return tps, 0, (f"the {on['name']}'s measured {m['tokens_per_s']:,.0f} tokens/s ({m['model']}, {m['what']}) "
                    f"scaled by the ratio of the two decoding ceilings: a lead, not a measurement; {bound}")


def _took(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def eval_plan_lines(tasks, preset_name: str, n_models: int, card: str | None = None, model: str | None = None,
                    backend: str | None = None, data_dir: Path | None = None) -> list[str]:
    """How much `evaluate.py` will generate for n_models models on `tasks`, and how long that takes where a
    generation speed was measured. card: a name of rsft/planner.yaml (t4, l4, ...), "cpu", or None for the card
    present; model: the base model's name as the recipe gives it; backend: hf | vllm (None: as evaluate.py picks).
    Every response is counted at its cap: the dip drives responses there (PAPER.md: 28-30k of 32k tokens at 4B),
    so this is the plan's worst case and close to the truth during the dip."""
    import importlib.util

    from rsft.catalogue import preset
    from rsft.cache import cache_root

    p = preset(preset_name)
    data_dir = Path(data_dir) if data_dir else cache_root() / "eval-data"
    gpu_card = None if card == "cpu" else (gpu(card) if card else detect_gpu())
    if backend is None:
        backend = "vllm" if gpu_card and importlib.util.find_spec("vllm") else "hf"
    loads = [task_load(t, p, data_dir) for t in tasks]
    where = gpu_card["name"] if gpu_card else "this CPU"
    lines = [f"evaluation plan {n_models} model(s) x {len(tasks)} task(s), {preset_name} preset, {backend} on {where}"]
    for t in loads:
        if t.skipped:
            lines.append(f"  {t.task:<16} skipped: {t.skipped}")
        elif t.questions is None:
            lines.append(f"  {t.task:<16} questions unknown until its data is built; {t.repeats} sample(s) x "
                         f"<= {t.cap:,} tokens each")
        else:
            lines.append(f"  {t.task:<16} {t.questions} questions x {t.repeats} sample(s) x <= {t.cap:,} tokens "
                         f"= {t.tokens:,} per model" + (" (not downloaded yet: evaluate.py --download-data DIR; "
                                                        "counted at its published size)" if t.not_here else ""))
    run = [t for t in loads if not t.skipped]
    total = n_models * sum(t.tokens for t in run)
    lines.append(f"  tokens          <= {total:,} in all (every response at its cap)")
    if not run:
        return lines
    cap = max(t.cap for t in run)
    shape = model_shape(model) if model and gpu_card else None
    tps, per_model, source = generation_speed(gpu_card, backend, model or "", shape, cap)
    if tps is not None:
        load = f" + {per_model:.0f} s to start each model" if per_model else " (model loading not included)"
        most = "at least" if source.startswith("the ceiling") else "at most"
        lines.append(f"  time            {most} ~{_took(total / tps + n_models * per_model)} at ~{tps:,.0f} "
                     f"tokens/s{load}; {source}")
    else:
        lines.append(f"  time            not estimated: {source}")
    return lines
