"""Sizes of two differences from the paper's code that the README's deviation table states (measured here, on CPU).

    python bench/bench_fidelity.py math500-gold FILE.jsonl   # MATH-500 rows with both `solution` and `answer`
    python bench/bench_fidelity.py bf16-accumulation          # summing micro-batch gradients in bf16 vs fp32

math500-gold: the paper's gold is math-verify's parse of the row's `solution` (math_eval_budget.py: a gold holding
"boxed" is parsed as is); the kit's is `answer` wrapped in \\boxed{}. Counts the rows where math-verify does not
find the two equivalent both ways. A public copy with both fields: MobileLLM/BudgetThinker
evaluation/data/math500/test.jsonl (HuggingFaceH4/MATH-500's solution and answer; its problems carry a prefix).

bf16-accumulation: `finetune: full` on one GPU adds each micro-batch's gradient into a bf16 .grad; the paper's
FSDP reduces in fp32. Sums 256 synthetic micro-batch gradients (a shared signal plus per-batch noise 3x larger,
1M elements) both ways and prints the relative L2 error of the bf16 sum.
"""
import json
import sys


def math500_gold(path: str) -> None:
    from math_verify import parse, verify

    rows = [json.loads(line) for line in open(path)]
    differ = [r["unique_id"] for r in rows if not (verify(gp := parse(r["solution"]),
                                                          gk := parse("\\boxed{" + r["answer"] + "}"))
                                                   and verify(gk, gp))]
    print(f"{len(rows)} rows; {len(differ)} where the paper's gold and the kit's are not equivalent: {differ}")


def bf16_accumulation(steps: int = 256, size: int = 1 << 20) -> None:
    import torch

    g = torch.Generator().manual_seed(0)
    signal = torch.randn(size, generator=g)
    exact = torch.zeros(size, dtype=torch.float64)
    acc = {torch.bfloat16: torch.zeros(size, dtype=torch.bfloat16), torch.float32: torch.zeros(size)}
    for _ in range(steps):
        micro = ((signal + 3 * torch.randn(size, generator=g)) / steps).to(torch.bfloat16)  # the loss scaled 1/steps
        exact += micro.double()
        for a in acc.values():
            a += micro.to(a.dtype)
    err = {dtype: ((a.double() - exact).norm() / exact.norm()).item() for dtype, a in acc.items()}
    print(f"{steps} micro-batches of {size} elements, relative L2 error of the sum: bf16 accumulator "
          f"{err[torch.bfloat16]:.4f}, fp32 accumulator {err[torch.float32]:.1e}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "math500-gold" and len(sys.argv) == 3:
        math500_gold(sys.argv[2])
    elif what == "bf16-accumulation":
        bf16_accumulation()
    else:
        sys.exit(__doc__)
