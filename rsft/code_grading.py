"""Code tasks' grading: the model's last python block run against a task's tests inside rsft.sandbox.

Beside rsft/sandbox.py (the boundary) and rsft/code_runner.py (what runs inside it). rsft.grading stays text in,
score out; this module is the one that executes model-written code.
"""
from __future__ import annotations

from rsft.grading import parse


CODE_TIMEOUT_S = 6.0  # per test, as LiveCodeBench and the paper
CODE_STARTUP_S = 10.0  # for the sandbox to start and compile the code, before the first test's clock
_PYTHON_TAGS = {"python", "python3", "py"}


def extract_code(response: str) -> str | None:
    """The last closed ```python block after thinking (linear scan: fences split the text)."""
    p = parse(response)
    if p.truncated:
        return None
    parts = p.answer_text.split("```")
    for block in reversed(parts[1:len(parts) - 1:2]):  # odd pieces lie between an opening and a closing fence
        tag, _, body = block.partition("\n")
        if tag.strip().lower() in _PYTHON_TAGS and body.strip():
            return body
    return None


def same_stdout(got: str, want: str) -> bool:
    """LiveCodeBench's rule: the same lines after stripping, each equal as text or as a row of decimal numbers."""
    from decimal import Decimal, InvalidOperation

    g = [line.strip() for line in got.strip().split("\n")]
    w = [line.strip() for line in want.strip().split("\n")]
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        if a == b:
            continue
        try:
            if [Decimal(x) for x in a.split()] != [Decimal(x) for x in b.split()]:
                return False
        except InvalidOperation:
            return False
    return True


def run_code_tests(code: str, tests: list[dict], fn_name: str | None = None,
                   timeout_s: float = CODE_TIMEOUT_S) -> tuple[bool, str]:
    """(all passed, why not): `code` on each test in order inside rsft.sandbox, stopping at the first failure.

    tests: LiveCodeBench's [{"input", "output", "testtype": "stdin" | "functional"}]. stdin tests feed the input to
    the program and compare its stdout (same_stdout); functional tests call Solution().fn_name (or a top-level
    fn_name) with one JSON argument per input line and compare the return value with the JSON output. The time
    limit is per test and enforced from outside; the expected outputs never enter the sandbox. testtype "check"
    (HumanEval): the input is a test program defining check(candidate), run against fn_name; passing = it returns
    (its asserts are its expected outputs, so they do enter the sandbox).
    """
    import json
    from pathlib import Path

    from rsft.sandbox import Limits, Sandbox

    if not tests:
        return False, "no tests"
    mode = {"functional": "call", "check": "check"}.get(tests[0].get("testtype"), "stdin")
    if mode != "stdin" and not fn_name:
        return False, f"{tests[0]['testtype']} tests need fn_name"
    limits = Limits(cpu_s=int((timeout_s + 1) * len(tests) + 5))  # LiveCodeBench's global bound, as CPU time
    with Sandbox(limits) as sb:
        sb.write("solution.py", code)
        sb.write("job.json", json.dumps({"mode": mode, "fn_name": fn_name, "inputs": str(sb.inputs)}))
        sb.start((Path(__file__).parent / "code_runner.py").read_text())
        if sb.recv_line(CODE_STARTUP_S) is None:
            return False, "the sandbox did not start"
        for i, test in enumerate(tests):
            sb.write_input(f"{i}.txt", test["input"])
            line = sb.recv_line(timeout_s) if sb.send(b"%d\n" % i) else None
            if line is None:
                return False, f"test {i}: time limit exceeded or the process died"
            try:
                reply = json.loads(line)
            except ValueError:
                return False, f"test {i}: garbled reply"
            if reply.get("i") != i or reply.get("status") != "ok":
                return False, f"test {i}: {reply.get('error')}"
            if mode == "check":
                ok = True  # check() returned: every assert held
            elif mode == "stdin":
                out = sb.read("out.txt")
                ok = out is not None and same_stdout(out.decode(errors="replace"), test["output"])
            else:
                raw = sb.read("ret.json")
                try:
                    ok = raw is not None and json.loads(raw) == json.loads(test["output"])
                except ValueError:
                    ok = False
            if not ok:
                return False, f"test {i}: wrong answer"
    return True, ""


def grade_code(response: str, tests: list[dict], fn_name: str | None = None,
               timeout_s: float = CODE_TIMEOUT_S) -> bool:
    """LiveCodeBench: the last ```python block after thinking passes every test (public + private)."""
    code = extract_code(response)
    return code is not None and run_code_tests(code, tests, fn_name, timeout_s)[0]


def grade_humaneval(response: str, doc: dict, timeout_s: float = CODE_TIMEOUT_S) -> bool:
    """HumanEval: the last ```python block after thinking, placed after the problem's prompt (its imports and helper
    functions; a complete definition in the block replaces the prompt's stub, and a bare body completes it, as
    HumanEval's completions do), passes check(entry_point) in rsft.sandbox within timeout_s."""
    code = extract_code(response)
    if code is None:
        return False
    test = [{"input": doc["test"], "testtype": "check"}]
    return run_code_tests(doc["prompt"] + "\n" + code, test, doc["entry_point"], timeout_s)[0]
