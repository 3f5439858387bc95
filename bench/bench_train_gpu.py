"""Training speed and peak memory on a GPU: the Unsloth backend against transformers + peft, same recipe.

    python bench/bench_train_gpu.py --out bench/logs                       # 1.7B and 8B shapes, 4k and 16k tokens
    python bench/bench_train_gpu.py --shapes qwen3-1.7b --lengths 4096 --methods lora

Models are Qwen3 shapes with random weights (rsft/toy.py; speed depends on shapes, not weights), built once under
--models-dir. Each (shape, backend, method) runs in a fresh process (Unsloth patches transformers for the whole
process), which trains one sequence per step at each length through train.py itself, gradient checkpointing on,
LoRA r=64 on all linear layers (the recipes' default). Reported: median tokens/s over the steps after --warmup, and
the allocator's peak memory; the ratio column is unsloth / hf from the same run on the same card.
A deadline skips what is left (and says so) so the whole check fits a lease.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = """
model:
  name_or_path: {model}
  backend: {backend}
  finetune: {method}
  gradient_checkpointing: true
data:
  path: {data}
  max_length: {length}
  over_length: truncate
train:
  output_dir: {out}
  per_device_train_batch_size: 1
  gradient_accumulation_steps: 1
  max_steps: {steps}
  learning_rate: 1.0e-4
checkpoints:
  every: 0
  doubling_from: 0
"""


def long_rows(n: int, length: int) -> list[dict]:
    """n rows whose responses run past `length` tokens (truncated to exactly `length` by the recipe)."""
    from rsft.countdown import make_dataset

    rows = make_dataset(64, seed=5)
    text = "\n".join(r["response"] for r in rows)
    chars = 8 * length  # the local tokenizer averages well under 8 characters a token
    body = (text * (chars // len(text) + 1))[:chars]
    return [{"prompt": rows[i]["prompt"], "response": body} for i in range(n)]


def worker(a) -> None:
    """One process: one (shape, backend, method) at each length; prints one JSON line per length."""
    if a.backend == "unsloth":
        import unsloth  # noqa: F401  (first, as in training)
    sys.path.insert(0, str(ROOT))
    import gc

    import torch
    import train

    model = Path(a.models_dir) / a.shape
    for length in a.lengths:
        gc.collect()  # the previous length's model: freed, so the peak below is this run's own
        torch.cuda.empty_cache()
        work = Path(a.models_dir) / "runs" / f"{a.shape}-{a.backend}-{a.method}-{length}"
        work.mkdir(parents=True, exist_ok=True)
        data = work / "data.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in long_rows(a.steps, length)))
        recipe = work / "recipe.yaml"
        recipe.write_text(RECIPE.format(model=model, backend=a.backend, method=a.method, data=data, length=length,
                                        out=work / "run", steps=a.steps))
        t0 = time.perf_counter()
        try:
            train.main([str(recipe)])
        except Exception as e:  # out of memory, a kernel that fails on this card: record it, go on
            print(json.dumps({"length": length, "error": f"{type(e).__name__}: {str(e)[:300]}"}), flush=True)
            continue
        recs = [json.loads(l) for l in (work / "run/metrics.jsonl").read_text().splitlines()]
        timed = recs[a.warmup:]
        assert all(r["tokens"] == length for r in recs), "every step must train exactly `length` tokens"
        print(json.dumps({"length": length, "tokens_per_s": statistics.median(r["tokens_per_s"] for r in timed),
                          "peak_memory_gb": max(r.get("peak_memory_gb", 0.0) for r in recs),
                          "steps_timed": len(timed), "wall_s": round(time.perf_counter() - t0, 1)}), flush=True)


def run_config(a, shape, backend, method, timeout) -> list[dict]:
    cmd = [sys.executable, __file__, "--worker", "--shape", shape, "--backend", backend, "--method", method,
           "--lengths", ",".join(map(str, a.lengths)), "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--models-dir", a.models_dir]
    log = Path(a.out) / f"{shape}-{backend}-{method}.log"
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        out, err = res.stdout, res.stderr
    except subprocess.TimeoutExpired as e:
        out, err = (e.stdout or b"").decode(errors="replace"), "timed out"
    log.write_text(out + "\n--- stderr ---\n" + err)
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{") and '"length"' in l]
    done = {r["length"] for r in rows}
    rows += [{"length": n, "error": f"no result (see {log.name}): {err.strip().splitlines()[-1:]}"}
             for n in a.lengths if n not in done]
    return [{"shape": shape, "backend": backend, "method": method, **r} for r in rows]


def table(results: list[dict], card: str) -> str:
    lines = [f"card: {card}", "",
             "| shape | method | tokens/seq | hf tok/s | unsloth tok/s | speed ratio | hf peak GB | unsloth peak GB |"
             " memory ratio |", "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["shape"], r["method"], r["length"]) for r in results})
    for shape, method, length in keys:
        by = {r["backend"]: r for r in results if (r["shape"], r["method"], r["length"]) == (shape, method, length)}
        h, u = by.get("hf", {}), by.get("unsloth", {})

        def cell(r, key, fmt):  # the number, else why there is none
            return fmt.format(r[key]) if key in r else r.get("error", "skipped")[:60]

        def ratio(key):
            return f"{u[key] / h[key]:.2f}x" if key in h and key in u else "-"

        lines.append(f"| {shape} | {method} | {length} | {cell(h, 'tokens_per_s', '{:,.0f}')} | "
                     f"{cell(u, 'tokens_per_s', '{:,.0f}')} | {ratio('tokens_per_s')} | "
                     f"{cell(h, 'peak_memory_gb', '{:.1f}')} | {cell(u, 'peak_memory_gb', '{:.1f}')} | "
                     f"{ratio('peak_memory_gb')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="qwen3-1.7b,qwen3-8b")
    ap.add_argument("--lengths", default="4096,16384")
    ap.add_argument("--methods", default="lora,qlora")
    ap.add_argument("--backends", default="unsloth,hf")
    ap.add_argument("--steps", type=int, default=5, help="optimizer steps per measurement (one sequence each)")
    ap.add_argument("--warmup", type=int, default=2, help="first steps left out of the median (kernel compiles)")
    ap.add_argument("--models-dir", default="/dev/shm/rsft-bench", help="where the random-weight models are built")
    ap.add_argument("--out", default="bench/logs")
    ap.add_argument("--deadline-s", type=float, default=3600, help="start no new configuration after this")
    ap.add_argument("--config-timeout-s", type=float, default=900, help="kill a configuration that runs longer")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.lengths = [int(x) for x in str(a.lengths).split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if a.worker:
        return worker(a)

    import torch

    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (a smoke test, not a benchmark)"
    Path(a.out).mkdir(parents=True, exist_ok=True)
    t_start, results = time.monotonic(), []
    for shape in a.shapes.split(","):
        if not (Path(a.models_dir) / shape / "config.json").exists():
            subprocess.run([sys.executable, "-m", "rsft.toy", shape, str(Path(a.models_dir) / shape)], check=True,
                           cwd=ROOT)
        for method in a.methods.split(","):
            for backend in a.backends.split(","):
                left = a.deadline_s - (time.monotonic() - t_start)
                if left < 30:
                    results += [{"shape": shape, "backend": backend, "method": method, "length": n,
                                 "error": "skipped: deadline"} for n in a.lengths]
                    continue
                print(f"{shape} {backend} {method} ...", flush=True)
                results += run_config(a, shape, backend, method, timeout=min(left, a.config_timeout_s))
                print("  " + json.dumps(results[-len(a.lengths):]), flush=True)
    (Path(a.out) / "bench_train_gpu.json").write_text(json.dumps({"card": card, "results": results}, indent=1))
    md = table(results, card)
    (Path(a.out) / "bench_train_gpu.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
