"""CPU generation speed of the embedded model, the six knobs the quickstart's evaluation turns, each against its
baseline in the same run: batch size, bf16 against float32 weights, a LoRA adapter merged against unmerged,
transformers' sdpa attention against the kit's grouped-query one under the padding mask (rsft.models.cpu_attention),
transformers' DynamicCache against the kit's preallocated one (rsft.kv_cache), alternated, and the sampler's noise
keyed per question (rsft.sampling.draw) against one drawn from torch's generator (the sampler before it).

64 held-out Countdown prompts (the kit's eval data: run evaluate.py once first), greedy, a fixed number of new
tokens (min_new_tokens = max_new_tokens, so every setting generates the same tokens). Prints tokens/s per setting;
`sampler` prints milliseconds per draw over the model's next-token scores, its third argument the number of draws.
`batch` with SAMPLES_DIR (one evaluated model's folder, e.g. runs/quickstart/eval/<preset>/step00070) sends the
prompts that evaluation sent instead: for the quickstart, its 200 prompts of three tasks.
    python bench/bench_cpu_generation.py batch 8,32,64 [NEW_TOKENS] [SAMPLES_DIR]
    python bench/bench_cpu_generation.py dtype bf16,fp32 [NEW_TOKENS]
    python bench/bench_cpu_generation.py merge runs/quickstart/checkpoints/step00045 [NEW_TOKENS]
    python bench/bench_cpu_generation.py attention sdpa,sdpa_gqa,sdpa [NEW_TOKENS]
    python bench/bench_cpu_generation.py cache dynamic,preallocated,dynamic,preallocated [NEW_TOKENS]
    python bench/bench_cpu_generation.py sampler generator,keyed,generator,keyed [DRAWS]
Numbers in bench/RESULTS.md: 2026-12-01 (the embedded default that learns; evaluated faster) and 2026-12-02
(sampled per question, for `sampler`).
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rsft.models import resolve_model_path
from rsft.tasks.datafile import eval_data_dir, test_file

MODEL = resolve_model_path("embedded:smollm2-135m-instruct")


def prompts(tok, n=64):
    rows = [json.loads(line) for line in test_file(eval_data_dir(), "countdown").read_text().splitlines()][:n]
    return [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False,
                                    add_generation_prompt=True) for r in rows]


def eval_prompts(tok, samples_dir: str) -> list[str]:
    """The prompts an evaluation sent (every *.samples.jsonl of one model's result folder), longest first, as
    lm-eval orders them."""
    from pathlib import Path

    texts = [json.loads(line)["prompt"] for f in sorted(Path(samples_dir).glob("*.samples.jsonl"))
             for line in f.read_text().splitlines()]
    if not texts:
        raise SystemExit(f"no *.samples.jsonl in {samples_dir}")
    return sorted(texts, key=lambda t: -len(tok(t, add_special_tokens=False)["input_ids"]))


def eval_model():
    """The embedded model as the CPU evaluation builds it (bf16, grouped-query attention), and its cache builder."""
    from rsft.kv_cache import preallocated_cache
    from rsft.models import cpu_attention

    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16, attn_implementation=cpu_attention())
    return model.eval(), lambda length: preallocated_cache(model.config, length)


def speed(model, tok, texts, batch, new_tokens, cache=None) -> float:
    """Tokens/s; `cache(batch_length)` builds the past_key_values for each batch (None: transformers' own)."""
    start = time.time()
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], return_tensors="pt", padding=True)
        extra = {"past_key_values": cache(enc["input_ids"].shape[1] + new_tokens)} if cache else {}
        with torch.no_grad():
            model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, **extra)
    return len(texts) * new_tokens / (time.time() - start)


def generator_draw(scores, top_p: float):
    """The sampler's draw before its noise was keyed: the same nucleus, Gumbel noise from torch's generator."""
    from rsft.sampling import _top, nucleus_mask

    def gumbel(like):
        return -(-torch.rand_like(like).log()).log()

    covered, kept, idx = _top(scores, top_p)
    if bool(covered.all()):
        return idx.gather(-1, (kept + gumbel(kept)).argmax(dim=-1, keepdim=True))
    scores = scores.masked_fill(nucleus_mask(scores, top_p), float("-inf"))
    return (scores + gumbel(scores)).argmax(dim=-1, keepdim=True)


def sampler_speed(name: str, scores, draws: int) -> float:
    """Milliseconds per draw of one token for every row (the quickstart's top-p 0.95)."""
    from rsft.sampling import draw

    keys = torch.arange(scores.shape[0])
    one = (lambda i: generator_draw(scores, 0.95)) if name == "generator" else (lambda i: draw(scores, keys, i, 0.95))
    one(0)
    start = time.time()
    for i in range(draws):
        one(i)
    return 1000 * (time.time() - start) / draws


def main(what: str, arg: str, new_tokens: int, samples: str | None = None) -> None:
    tok = AutoTokenizer.from_pretrained(MODEL)
    tok.padding_side = "left"
    texts = prompts(tok)
    if what == "batch":  # as the evaluation generates: grouped-query attention, the preallocated cache
        model, cache = eval_model()
        texts = eval_prompts(tok, samples) if samples else texts
        for b in map(int, arg.split(",")):
            rate = speed(model, tok, texts, b, new_tokens, cache)
            print(f"bf16 batch {b}, {len(texts)} prompts: {rate:.0f} tokens/s", flush=True)
    elif what == "dtype":
        for name in arg.split(","):
            dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[name]
            model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=dtype).eval()
            print(f"{name} batch 64: {speed(model, tok, texts, 64, new_tokens):.0f} tokens/s", flush=True)
    elif what == "merge":
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16).eval()
        print(f"base: {speed(base, tok, texts, 64, new_tokens):.0f} tokens/s", flush=True)
        model = PeftModel.from_pretrained(base, arg).eval()
        print(f"adapter unmerged: {speed(model, tok, texts, 64, new_tokens):.0f} tokens/s", flush=True)
        model = model.merge_and_unload()
        print(f"adapter merged: {speed(model, tok, texts, 64, new_tokens):.0f} tokens/s", flush=True)
    elif what == "attention":
        from rsft.models import CPU_ATTENTION, cpu_attention

        cpu_attention()  # registers CPU_ATTENTION with transformers
        for name in arg.split(","):
            if name not in ("sdpa", CPU_ATTENTION):
                raise SystemExit(f"attention: sdpa or {CPU_ATTENTION}, got {name}")
            model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16, attn_implementation=name).eval()
            print(f"{name} batch 64: {speed(model, tok, texts, 64, new_tokens):.0f} tokens/s", flush=True)
    elif what == "cache":
        model, cache = eval_model()
        for name in arg.split(","):
            if name not in ("dynamic", "preallocated"):
                raise SystemExit(f"cache: dynamic or preallocated, got {name}")
            rate = speed(model, tok, texts, 64, new_tokens, cache if name == "preallocated" else None)
            print(f"{name} batch 64: {rate:.0f} tokens/s", flush=True)
    elif what == "sampler":  # the model's next-token scores after the 64 prompts, at the quickstart's T 0.6
        model, _ = eval_model()
        with torch.no_grad():
            scores = model(**tok(texts, return_tensors="pt", padding=True)).logits[:, -1].float() / 0.6
        for name in arg.split(","):
            if name not in ("generator", "keyed"):
                raise SystemExit(f"sampler: generator or keyed, got {name}")
            print(f"{name}, 64 rows x {scores.shape[-1]} tokens: {sampler_speed(name, scores, new_tokens):.2f} ms a "
                  "draw", flush=True)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 96,
         sys.argv[4] if len(sys.argv) > 4 else None)
