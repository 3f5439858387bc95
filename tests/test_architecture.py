"""The rules of docs/architecture.md, read from the code's imports: arrows point down (no module of rsft/ imports a
command; a leaf imports only leaves) and no module is over 450 lines unless its first lines say why."""
import ast
from pathlib import Path

from helpers import ROOT

COMMANDS = {"train", "evaluate", "report"}
LEAVES = {"rundir", "errors", "grading", "math_grading", "choice_grading", "short_answer_grading",
          "instruction_grading", "code_grading", "code_runner", "sandbox", "countdown", "sampling", "kv_cache",
          "repetition", "processes", "prompts", "model_shapes", "stats", "cpu_decode", "toy", "cache"}
MAX_LINES = 450


def imports(path: Path) -> set[str]:
    """The modules a file imports (top-level names for commands, rsft.X for the kit's own)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            if node.module == "rsft":
                out |= {f"rsft.{a.name}" for a in node.names}
    return out


def modules():
    return sorted((ROOT / "rsft").rglob("*.py"))


def test_no_module_of_the_kit_imports_a_command():
    assert modules()
    offenders = {p.relative_to(ROOT).as_posix(): sorted(imports(p) & COMMANDS) for p in modules()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_a_leaf_imports_only_leaves():
    leaves = {f"rsft.{name}" for name in LEAVES}
    assert all((ROOT / "rsft" / f"{name}.py").exists() for name in LEAVES)  # a renamed leaf must be renamed here
    found = {name: sorted(m for m in imports(ROOT / "rsft" / f"{name}.py") if m.startswith("rsft.") and m not in leaves)
             for name in LEAVES}
    assert {k: v for k, v in found.items() if v} == {}


def test_no_module_is_over_450_lines_without_saying_why():
    long = {}
    for p in [*modules(), ROOT / "train.py", ROOT / "evaluate.py", ROOT / "report.py"]:
        lines = p.read_text().count("\n")
        head = (ast.get_docstring(ast.parse(p.read_text())) or "")[:400].lower()  # its first lines
        if lines > MAX_LINES and "one module" not in head:
            long[p.relative_to(ROOT).as_posix()] = lines
    assert long == {}
