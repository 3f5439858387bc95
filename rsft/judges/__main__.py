"""The judging phase in a fresh process: python -m rsft.judges SPEC.json (a rsft.specs.JudgeSpec; evaluate.py
writes it and starts this once every model's generation has finished). Exits 2, its last line naming the tasks,
when samples are left unjudged or a task's files cannot be read; finished judgments are kept and a rerun goes on."""
import sys

from rsft.errors import UserError, run_cli
from rsft.judges.phase import run_judges
from rsft.specs import JudgeSpec, read_spec


def _main() -> int:
    if len(sys.argv) != 2:
        raise UserError("usage: python -m rsft.judges SPEC.json (evaluate.py writes the spec)")
    undone = run_judges(read_spec(JudgeSpec, sys.argv[1]))
    if undone:
        raise UserError(f"judging incomplete: {'; '.join(undone)}; finished judgments are kept, rerun to continue")
    return 0


if __name__ == "__main__":
    run_cli(_main)
