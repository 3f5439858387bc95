"""Generation throughput for long reasoning outputs: vLLM against transformers' generate, same prompts, same card.

    python bench/bench_eval_gpu.py --out bench/logs                        # Qwen3-1.7B shape, 32 prompts x 2,048 tokens
    python bench/bench_eval_gpu.py --shape qwen3-tiny --backends hf --prompts 4 --max-new-tokens 32   # CPU smoke run

The model is a Qwen3 shape with random weights (rsft/toy.py): it never emits EOS, so every response runs to
--max-new-tokens, the long-output regime of reasoning evaluation (the paper allows 32,768). Sampling as the paper:
T 0.6, top_p 0.95. hf generates in batches of --batch-size (evaluate.py's default, 8); vLLM gets every prompt at
once with prefix caching on, as evaluate.py runs it. Each backend runs in a fresh process. Reported: generated
tokens/s and the vLLM / hf ratio.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # rsft, when run as a script


def prompts(n: int, tokenizer) -> list[str]:
    from rsft.countdown import make_dataset

    rows = make_dataset(n, seed=11)
    return [tokenizer.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False,
                                          add_generation_prompt=True) for r in rows]


def run_hf(a, path: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to(dev).eval()
    texts, generated = prompts(a.prompts, tok), 0
    t0 = time.perf_counter()
    for i in range(0, len(texts), a.batch_size):
        batch = tok(texts[i:i + a.batch_size], return_tensors="pt", padding=True).to(dev)
        with torch.no_grad():
            out = model.generate(**batch, do_sample=True, temperature=0.6, top_p=0.95,
                                 max_new_tokens=a.max_new_tokens, min_new_tokens=a.max_new_tokens,
                                 pad_token_id=tok.pad_token_id)
        generated += int((out[:, batch["input_ids"].shape[1]:] != tok.pad_token_id).sum())
    return {"generated_tokens": generated, "seconds": time.perf_counter() - t0}


def run_vllm(a, path: str) -> dict:
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    tok = AutoTokenizer.from_pretrained(path)
    llm = LLM(model=path, dtype="bfloat16", enable_prefix_caching=True, seed=1234,
              max_model_len=a.max_new_tokens + 512)
    params = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=a.max_new_tokens, min_tokens=a.max_new_tokens,
                            ignore_eos=True)
    t0 = time.perf_counter()
    outs = llm.generate(prompts(a.prompts, tok), params)
    return {"generated_tokens": sum(len(o.outputs[0].token_ids) for o in outs), "seconds": time.perf_counter() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="qwen3-1.7b")
    ap.add_argument("--backends", default="vllm,hf")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=8, help="hf: prompts per generate call")
    ap.add_argument("--models-dir", default="/dev/shm/rsft-bench")
    ap.add_argument("--out", default="bench/logs")
    ap.add_argument("--timeout-s", type=float, default=900, help="per backend")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    path = str(Path(a.models_dir) / a.shape)
    if a.worker:
        print(json.dumps({"vllm": run_vllm, "hf": run_hf}[a.worker](a, path)), flush=True)
        return
    if not (Path(path) / "config.json").exists():
        subprocess.run([sys.executable, "-m", "rsft.toy", a.shape, path], check=True, cwd=ROOT)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    results = {}
    for backend in a.backends.split(","):
        cmd = [sys.executable, __file__, "--worker", backend, *(argv if argv is not None else sys.argv[1:])]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout_s, cwd=ROOT)
            lines = [l for l in res.stdout.splitlines() if l.startswith("{")]
            results[backend] = json.loads(lines[-1]) if lines else {"error": res.stderr.strip().splitlines()[-1:]}
        except subprocess.TimeoutExpired:
            results[backend] = {"error": f"timed out after {a.timeout_s:.0f} s"}
        r = results[backend]
        if "seconds" in r:
            r["tokens_per_s"] = round(r["generated_tokens"] / r["seconds"], 1)
        print(backend, json.dumps(r), flush=True)
    import torch

    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (a smoke run, not a benchmark)"
    (Path(a.out) / "bench_eval_gpu.json").write_text(json.dumps({"card": card, "shape": a.shape, "prompts": a.prompts,
                                                                 "max_new_tokens": a.max_new_tokens,
                                                                 "results": results}, indent=1))
    tps = {b: r.get("tokens_per_s") for b, r in results.items()}
    ratio = f"{tps['vllm'] / tps['hf']:.1f}x" if tps.get("vllm") and tps.get("hf") else "-"
    print(f"card: {card}; {a.shape}, {a.prompts} prompts x {a.max_new_tokens} new tokens")
    print(f"hf {tps.get('hf')} tok/s | vllm {tps.get('vllm')} tok/s | vllm/hf {ratio}")


if __name__ == "__main__":
    main()
