"""Data preparation throughput: the kit's batched tokenization against a naive per-row loop, same rows, same run.

    python bench/bench_data_prep.py                      # 20,480 rows x ~6k-token responses (Math-CoT shape)
    python bench/bench_data_prep.py --rows 2048 --naive-rows 256

Rows are synthetic, in the exact Math-CoT-20k schema; the tokenizer is the embedded SmolLM2's (real BPE + chat
template). The naive loop is what a first script does: apply_chat_template(tokenize=True) and tokenizer(response)
one row at a time. It runs on a subset (--naive-rows) and is reported as rows/s. The cached rerun is timed too.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsft.config import DataConfig  # noqa: E402
from rsft.prompts import MATH_PROMPT_SUFFIX  # noqa: E402

WORDS = ("so we get x = 3 then check the sum again wait let me verify the factor 12 and 7 hence the "
         "answer is consistent alternatively consider the case where n is odd").split()


def synthetic_rows(n: int, response_tokens: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        q = f"Problem {i}: find all integers n such that n^2 + {i % 97} n + {i % 13} is prime."
        body = " ".join(rng.choice(WORDS) for _ in range(int(response_tokens * 0.8)))
        rows.append({"data_source": "bench", "question": q, "answer": str(i % 10),
                     "message": [{"role": "user", "content": q + MATH_PROMPT_SUFFIX}],
                     "response": f"<think>\n{body}\n</think>\n\nThe answer is \\boxed{{{i % 10}}}.",
                     "response_length": response_tokens, "advantage": 1.0, "logprob": []})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20480)
    ap.add_argument("--naive-rows", type=int, default=512)
    ap.add_argument("--response-tokens", type=int, default=6000)
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from rsft.data import apply_length_policy, load_tokenized
    from rsft.models import EMBEDDED_SMOLLM2, resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path(EMBEDDED_SMOLLM2))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RSFT_CACHE"] = tmp
        path = Path(tmp) / "rows.jsonl"
        rows = synthetic_rows(args.rows, args.response_tokens)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cfg = DataConfig(path=str(path), max_length=20000)

        t = time.perf_counter()
        data = apply_length_policy(load_tokenized(cfg, tok, "bench"), cfg)
        batched = time.perf_counter() - t
        t = time.perf_counter()
        load_tokenized(cfg, tok, "bench")
        cached = time.perf_counter() - t

        sub = rows[: args.naive_rows]
        t = time.perf_counter()
        for r in sub:
            p = tok.apply_chat_template(r["message"], add_generation_prompt=True, tokenize=True, return_dict=False)
            _ = p + tok(r["response"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        naive = time.perf_counter() - t

    tokens = data.stats["kept_tokens"]
    result = {
        "rows": args.rows, "tokens": tokens, "tokens_p50": data.stats["tokens_p50"], "cpu_count": os.cpu_count(),
        "batched_s": round(batched, 2), "batched_rows_per_s": round(args.rows / batched, 1),
        "batched_tokens_per_s": round(tokens / batched),
        "cached_reload_s": round(cached, 2),
        "naive_rows": len(sub), "naive_rows_per_s": round(len(sub) / naive, 1),
        "speedup_batched_vs_naive": round((args.rows / batched) / (len(sub) / naive), 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
