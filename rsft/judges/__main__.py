"""The judging phase in a fresh process: python -m rsft.judges SPEC.json (a rsft.specs.JudgeSpec; evaluate.py
writes it and starts this once every model's generation has finished)."""
import sys

from rsft.errors import run_cli
from rsft.judges.phase import run_judges
from rsft.specs import JudgeSpec, read_spec


def _main() -> int:
    run_judges(read_spec(JudgeSpec, sys.argv[1]))
    return 0


if __name__ == "__main__":
    run_cli(_main)
