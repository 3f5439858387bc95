"""Write the report of evaluated runs: tables, curves, the dip, behaviour, the paper side by side, bootstraps.

    python report.py runs/quickstart                              # -> reports/quickstart/report.html
    python report.py runs/qwen3-4b-cot runs/qwen3-4b-nocot        # several runs on one figure
    python report.py runs/A runs/B --out reports/A-vs-B

Reads what evaluate.py wrote (RUN/eval/PRESET/stepNNNNN/TASK.json and TASK.samples.jsonl); evaluates nothing.
The folder gets report.html (self-contained: open it from disk), report.md with the PNG figures beside it, and
the tables as CSV (scores, dips, behaviour, paper, significance).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rsft.errors import run_cli


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders written by train.py and evaluated by evaluate.py")
    p.add_argument("--out", help="report folder (default: reports/RUN, or reports/RUN1+RUN2+...)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from rsft.report import write_report

    runs = [Path(r) for r in args.runs]
    out = Path(args.out) if args.out else Path("reports") / "+".join(r.resolve().name for r in runs)
    page, warnings = write_report(runs, out)
    for w in warnings:
        print(f"warning: {w}")
    print(f"report: {page} (tables as CSV and figures as PNG beside it)")
    return 0


if __name__ == "__main__":
    run_cli(main)
