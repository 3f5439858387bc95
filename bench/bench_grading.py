"""Grading throughput: rsft.math_grading.grade_math as the kit calls it against math-verify called in-process, same answers.

    python bench/bench_grading.py                       # 2,000 responses (about 2 minutes on 2 cores)
    python bench/bench_grading.py --n 400 --hostile 2   # a quick look

The responses are synthetic but shaped like a reasoning model's: `<think>...</think>` of 0.5-3k characters, then
an answer with a \\boxed{} (or none), over integers, fractions, LaTeX expressions, intervals and tuples, about a
third of them wrong, a few cut off mid-thought, and a few hostile ones (power towers that can hang sympy, answers
far past the kit's length guard). The kit's path: the answer after the last </think> (cut-off thinking scores 0),
an exact-match fast path, else math-verify in its killable, memory-capped worker process (GRADE_TIMEOUT_S).
The baseline: math_verify.verify(parse(gold), parse(response)) in this process, gold boxed as the kit boxes it;
it skips the hostile responses (nothing could stop a hung sympy call here) and is timed on the rest. Verdicts are
compared on the responses that are neither hostile nor cut off (cut-off ones score 0 in the kit by design).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ("so we get then check the sum again wait let me verify the factor hence consider the case where n is odd "
         "substitute back and simplify the expression carefully").split()


def _frac(rng):
    a, b = rng.randint(1, 40), rng.randint(2, 41)
    while __import__("math").gcd(a, b) != 1:
        a, b = rng.randint(1, 40), rng.randint(2, 41)
    return f"\\frac{{{a}}}{{{b}}}", [f"{a}/{b}", f"\\dfrac{{{a}}}{{{b}}}", f"\\frac{{{2 * a}}}{{{2 * b}}}"], \
        [f"\\frac{{{b}}}{{{a}}}", f"{a}/{b + 1}"]


def _int(rng):
    n = rng.randint(-500, 5000)
    return str(n), [str(n), f"{n}.0", f"x = {n}"], [str(n + 1), str(-n - 7)]


def _expr(rng):
    k = rng.randint(2, 9)
    c = rng.randint(1, 9)
    return rng.choice([
        (f"{k}\\sqrt{{{c}}}" if c not in (1, 4, 9) else str(k * int(c ** 0.5)),
         [f"\\sqrt{{{k * k * c}}}"], [f"{k + 1}\\sqrt{{{c}}}"]),
        (f"\\frac{{\\pi}}{{{k}}}", [f"\\pi/{k}", f"\\frac{{1}}{{{k}}}\\pi"], [f"\\frac{{\\pi}}{{{k + 1}}}"]),
        (f"x^2+{2 * c}x+{c * c}", [f"(x+{c})^2", f"x^2 + {2 * c} x + {c * c}"], [f"(x-{c})^2", f"x^2+{c * c}"]),
        (f"{k}e^{{{c}}}", [f"{k} e^{c}"], [f"{k}e^{{{c + 1}}}"]),
    ])


def _interval(rng):
    a, b = sorted(rng.sample(range(-20, 20), 2))
    return rng.choice([
        (f"(-\\infty, {a}]", [f"(-\\infty,{a}]", f"\\left(-\\infty, {a}\\right]"], [f"(-\\infty, {a})"]),
        (f"[{a}, {b})", [f"[{a},{b})", f"\\left[{a}, {b}\\right)"], [f"[{a}, {b}]", f"({a}, {b})"]),
    ])


def _tuple(rng):
    a, b = rng.randint(-9, 9), rng.randint(10, 20)
    return f"({a}, {b})", [f"({a},{b})", f"\\left({a}, {b}\\right)"], [f"({b}, {a})"]


KINDS = (("integer", _int), ("fraction", _frac), ("expression", _expr), ("interval", _interval), ("tuple", _tuple))


def thinking(rng) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 500)))


def answer_set(n: int, hostile: int, seed: int = 0) -> list[dict]:
    """n responses: {kind, gold, response, expected (what a right grader says; None for hostile)}."""
    rng = random.Random(seed)
    rows = []
    for i in range(n - hostile):
        kind, make = KINDS[i % len(KINDS)]
        gold, right, wrong = make(rng)
        correct = rng.random() < 0.65
        pred = rng.choice(right if correct else wrong)
        style = rng.random()
        if style < 0.04:  # cut off mid-thought: the kit scores 0 whatever is in it
            rows.append({"kind": "cut off", "gold": gold, "response": f"<think>\n{thinking(rng)} \\boxed{{{pred}}}",
                         "expected": False})
            continue
        if style < 0.10:  # no box: the kit hands math-verify the reply's tail
            tail = f"So the final answer is ${pred}$."
        else:
            tail = f"The answer is $\\boxed{{{pred}}}$."
        rows.append({"kind": kind, "gold": gold, "response": f"<think>\n{thinking(rng)}\n</think>\n\n{tail}",
                     "expected": correct})
    towers = ["9^{9^{9^{9}}}", "10^{10^{10^{10^{10}}}}", "2^{3^{4^{5^{6}}}}", "99^{99^{99^{99}}}"]
    for j in range(hostile):
        what, body = [("power tower", f"\\boxed{{{towers[j // 3 % len(towers)]}}}"),  # sympy may evaluate it exactly
                      ("10k-char box", "\\boxed{" + "1+" * 5000 + "1}"),  # past the length guard
                      ("200k-char flood", "x" * 200_000)][j % 3]  # no answer at all
        rows.append({"kind": "hostile", "what": what, "gold": "1",
                     "response": f"<think>\n{thinking(rng)}\n</think>\n\n{body}", "expected": None})
    rng.shuffle(rows)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="responses in all")
    ap.add_argument("--hostile", type=int, default=6, help="of which hostile (each may cost the kit a timeout)")
    args = ap.parse_args()

    from math_verify import parse, verify

    import rsft.math_grading as grading

    class Recording(grading.MathVerifier):  # the kit's own worker, noting what it is sent and how long it takes
        def __call__(self, gold, pred, config="default"):
            t = time.perf_counter()
            ok = super().__call__(gold, pred, config)
            self.calls.append((self.row, gold, pred, time.perf_counter() - t))
            return ok

    rows = answer_set(args.n, args.hostile)
    worker = grading._VERIFIER = Recording()
    worker.calls, worker.row = [], None
    t = time.perf_counter()
    worker("\\boxed{1}", "\\boxed{2}")  # start the worker (spawn + import sympy): once per process
    start_s = time.perf_counter() - t
    worker.calls.clear()
    kit, took = [], []
    for i, r in enumerate(rows):
        worker.row = i
        t = time.perf_counter()
        kit.append(grading.grade_math(r["response"], r["gold"]))
        took.append(time.perf_counter() - t)
    kit_s = sum(took)
    kit_calls = len(worker.calls)


    verify(parse("\\boxed{1}"), parse("\\boxed{2}"))  # the same warm-up as the worker's, then the baseline
    base = {}
    t = time.perf_counter()
    for i, r in enumerate(rows):
        if r["kind"] != "hostile":
            base[i] = bool(verify(parse("\\boxed{" + r["gold"] + "}"), parse(r["response"])))
    base_s = time.perf_counter() - t

    # the worker's cost alone: the very strings the kit sent it, verified in this process instead (run last, so the
    # baseline above did not get sympy's cache warmed by it)
    same = [(g, p, s) for i, g, p, s in worker.calls if rows[i]["kind"] != "hostile"]
    t = time.perf_counter()
    for g, p, _ in same:
        verify(parse(g), parse(p))
    same_s = time.perf_counter() - t

    # the round trip alone: one pair that math-verify's caches answer at once, 200 times each way
    pair = ("\\boxed{12}", "\\boxed{13}")
    worker(*pair), verify(parse(pair[0]), parse(pair[1]))
    t = time.perf_counter()
    for _ in range(200):
        worker(*pair)
    trip = (time.perf_counter() - t) / 200
    t = time.perf_counter()
    for _ in range(200):
        verify(parse(pair[0]), parse(pair[1]))
    trip -= (time.perf_counter() - t) / 200

    compared = [i for i, r in enumerate(rows) if r["kind"] not in ("hostile", "cut off")]
    differ = [{"kind": rows[i]["kind"], "gold": rows[i]["gold"], "answer": rows[i]["response"].rsplit("</think>", 1)[1]
               .strip(), "kit": kit[i], "in_process": base[i], "expected": rows[i]["expected"]}
              for i in compared if kit[i] != base[i]]
    kit_off = sum(kit[i] != rows[i]["expected"] for i in compared)
    benign = [i for i, r in enumerate(rows) if r["kind"] != "hostile"]
    kit_benign_s = sum(took[i] for i in benign)
    by_kind = {}
    for r, s in zip(rows, took):
        by_kind.setdefault(r["kind"], []).append(s)
    result = {
        "responses": len(rows), "hostile": args.hostile, "cpu_count": os.cpu_count(),
        "kit_worker_start_s": round(start_s, 2),
        "kit_total_s": round(kit_s, 2), "kit_answers_per_s": round(len(rows) / kit_s, 1),
        "kit_non_hostile_answers_per_s": round(len(benign) / kit_benign_s, 1),
        "kit_hostile_s": [(r["what"], round(s, 2)) for r, s in zip(rows, took) if r["kind"] == "hostile"],
        "kit_timeouts": worker.timeouts,
        "kit_fast_path_share": round(1 - kit_calls / len(rows), 3),
        "worker_calls_non_hostile": len(same),
        "worker_ms_per_call": round(1000 * sum(s for *_, s in same) / max(1, len(same)), 2),
        "in_process_ms_per_call_same_strings_warm_cache": round(1000 * same_s / max(1, len(same)), 2),
        "worker_round_trip_ms": round(1000 * trip, 3),
        "in_process_non_hostile_s": round(base_s, 2), "in_process_answers_per_s": round(len(benign) / base_s, 1),
        "ratio_kit_over_in_process_non_hostile": round((len(benign) / kit_benign_s) / (len(benign) / base_s), 2),
        "mean_ms_by_kind_kit": {k: round(1000 * sum(v) / len(v), 2) for k, v in sorted(by_kind.items())},
        "verdicts_compared": len(compared), "disagreements": len(differ),
        "kit_differs_from_expected": kit_off,
        "in_process_differs_from_expected": sum(base[i] != rows[i]["expected"] for i in compared),
    }
    print(json.dumps(result, indent=2))
    for d in differ[:20]:
        print(json.dumps(d))


if __name__ == "__main__":
    main()
