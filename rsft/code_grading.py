"""Code tasks' grading: the model's last python block run against a task's tests inside rsft.sandbox; and the code
the paper's LiveCodeBench scorer ran, its time budget and its stdout comparison.

Beside rsft/sandbox.py (the boundary) and rsft/code_runner.py (what runs inside it). rsft.grading stays text in,
score out; this module is the one that executes model-written code.
"""
from __future__ import annotations

import contextlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rsft.grading import parse
from rsft.sandbox import SandboxError, memory_reserved, now

RUNNER = Path(__file__).parent / "code_runner.py"
REPLY_BYTES = 64 << 20  # the longest line a sandbox may send (a program's output, JSON-escaped)
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


JSON_DEPTH = 100  # nesting beyond which two JSON values are compared by their text (Python's == would recurse)


def same_json(got: str, want: str) -> bool:
    """Whether two JSON texts hold equal values, as Python's == on json.loads compares them (1 == 1.0, dicts in
    any order), for any depth and size: integers of any length are exact (json.loads would refuse past 4,300
    digits), values of different nesting depth differ without being parsed (equal values nest alike), and values
    nested deeper than JSON_DEPTH are equal only as identical text; nothing recurses past it. A text that is not
    JSON differs."""
    dg, dw = _json_depth(got), _json_depth(want)
    if dg != dw:
        return False
    if dg > JSON_DEPTH:
        return got.strip() == want.strip()
    try:
        return json.loads(got, parse_int=_exact_int) == json.loads(want, parse_int=_exact_int)
    except ValueError:
        return False


def _exact_int(text: str) -> int:
    from decimal import Decimal

    return int(text) if len(text) < 4000 else int(Decimal(text))  # Decimal has no digit limit, nor int(Decimal)


def _json_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings (regular expressions and a running sum: no recursion)."""
    import itertools

    steps = [1 if b in "[{" else -1 for b in _BRACKETS.findall(_STRINGS.sub("", text))]
    return max(itertools.accumulate(steps), default=0)


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


# ------------------------------------------------------------------------------------------------ LiveCodeBench (paper)

# LiveCodeBench as the paper ran it (evalchemy LiveCodeBench/eval_instruct.py and livecodebench_utils.py @ 4a20109),
# pure functions for run_code_tests below: which code runs, how long, and when stdout passes.
LCB_PAPER_TEST_S = 6  # the paper's per-test timeout, which only enters its budget for the whole run below


def livecodebench_paper_code(response: str) -> str | None:
    """The code the paper ran: the last ```python block anywhere in the reply (thinking included), through its
    post_process_code; None when there is none. (With no block the paper's code takes the reply itself and runs its
    last character, a string's [-1], which prints nothing and so passes no test: the same 0 as no code.)"""
    blocks = re.findall(r"```python\n(.*?)```", response, re.DOTALL)
    if not blocks:
        return None
    code = blocks[-1].split("</code>")[0].replace("```python", "").replace("# YOUR CODE HERE", "")
    return code.split("```")[0].replace("<code>", "").strip() or None


def livecodebench_paper_budget_s(n_tests: int, test_s: float = LCB_PAPER_TEST_S) -> float:
    """The paper's one time budget for all of a problem's tests together: (6 + 1) s per test + 5 s (lcb_run's join);
    tests not finished by then fail."""
    return (test_s + 1) * n_tests + 5


def livecodebench_paper_stdout_ok(stdout: str, expected: str) -> bool:
    """The paper's stdin/stdout comparison: the whole stripped stdout `==` the stripped expected output, less a
    trailing "-" (as prepare_test_input_output_std does)."""
    want = expected.strip()
    if want.endswith("-"):
        want = want[: want.rfind("-")].rstrip()
    return stdout.strip() == want


# ------------------------------------------------------------------------------------------------ running the tests


def run_code_tests(code: str, tests: list[dict], fn_name: str | None = None, timeout_s: float = CODE_TIMEOUT_S,
                   paper: bool = False) -> tuple[bool, str]:
    """(all passed, why not): `code` on each test in order inside rsft.sandbox, stopping at the first failure.

    tests: LiveCodeBench's [{"input", "output", "testtype": "stdin" | "functional"}]. stdin tests feed the input to
    the program and compare its stdout (same_stdout); functional tests call Solution().fn_name (or a top-level
    fn_name) with one JSON argument per input line and compare the return value with the JSON output. The time
    limit is per test and enforced from outside; the expected outputs never enter the sandbox, and the comparison
    is made here, on what the sandbox sent back as JSON (HumanEval's check-style tests: run_check).
    paper=True: the paper's runner (LiveCodeBench's `value`): stdin tests run as its run_test_std ran them
    (code_runner.run_paper) and pass on its whole-stdout comparison; one time budget for all the tests together,
    (timeout_s + 1) * n + 5 s counted from the sandbox's start (its process.join), no limit per test.
    """
    from rsft.sandbox import Limits

    if not tests:
        return False, "no tests"
    mode = "call" if tests[0].get("testtype") == "functional" else "paper" if paper else "stdin"
    if mode == "call" and not fn_name:
        return False, "functional tests need fn_name"
    budget_s = livecodebench_paper_budget_s(len(tests), timeout_s) if paper else None
    limits = Limits(cpu_s=int((timeout_s + 1) * len(tests) + 5))  # LiveCodeBench's global bound, as CPU time
    stdout_ok = livecodebench_paper_stdout_ok if paper else same_stdout
    with memory_reserved(1, limits), _runner(limits, code, mode, fn_name) as sb:
        deadline = None if budget_s is None else now() + budget_s  # the paper's budget counts the start too
        if _reply(sb, CODE_STARTUP_S if deadline is None else deadline - now()) is None:
            if deadline is not None and now() >= deadline:
                return False, f"the time budget for all tests ({budget_s:.0f} s) is spent before the first test"
            # nothing of the code has run yet (every mode says ready before it): the grader's fault, not a 0
            raise SandboxError(f"the code runner did not start in its sandbox: {sb.stderr()[-1000:]}")
        for i, test in enumerate(tests):
            sb.write_input(f"{i}.txt", test["input"])
            left = timeout_s if deadline is None else deadline - now()
            if left <= 0:
                return False, f"test {i}: the time budget for all tests ({budget_s:.0f} s) is spent"
            reply = _reply(sb, left) if sb.send(b"%d\n" % i) else None
            if reply is None:
                return False, f"test {i}: time limit exceeded, the process died or its reply was garbled"
            if reply.get("i") != i or reply.get("status") != "ok":
                return False, f"test {i}: {str(reply.get('error'))[:500]}"
            if mode != "call":
                out = reply.get("stdout")
                ok = type(out) is str and stdout_ok(out, test["output"])
            else:
                ok = type(reply.get("value")) is str and same_json(reply["value"], test["output"])
            if not ok:
                return False, f"test {i}: wrong answer"
    return True, ""


def run_check(code: str, program: str, entry_point: str, timeout_s: float = CODE_TIMEOUT_S) -> tuple[bool, str]:
    """HumanEval: `program` (the problem's prompt and test, trusted) runs check(entry_point) in one sandbox while
    `code` runs in another that only answers calls; this process relays each call and its plain-data reply and
    reads the verdict from the checker's pipe. Passing = check() returned within timeout_s, start excluded."""
    from rsft.sandbox import Limits

    limits = Limits(cpu_s=int(timeout_s + 5))
    with memory_reserved(2, limits), contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(2) as pool:  # both start at once: the start is most of a sample's cost
            starts = [pool.submit(_runner, limits, code, "serve", entry_point),
                      pool.submit(_runner, limits, program, "check", entry_point)]
        for f in starts:
            if f.exception() is None:
                stack.enter_context(f.result())
        solution, checker = (f.result() for f in starts)  # raises the start's error, both closed
        started = _reply(checker, CODE_STARTUP_S)  # the problem's own program: failing here is the grader's fault
        if started is None or started.get("ready") is not True:
            raise SandboxError(f"the test program did not start: {str((started or {}).get('error'))[:500]} "
                               f"{checker.stderr()[-1000:]}")
        ready = _reply(solution, CODE_STARTUP_S)
        if ready is None or ready.get("ready") is not True:
            return False, f"the solution did not load: {str((ready or {}).get('error'))[:500]}"
        if not checker.send(b"go\n"):
            raise SandboxError(f"the test program died before its check: {checker.stderr()[-1000:]}")
        deadline = now() + timeout_s
        while True:
            message = _reply(checker, deadline - now())
            if message is None:
                return False, "time limit exceeded or the checker died"
            if "verdict" in message:
                return message["verdict"] == "pass", str(message.get("error") or "")[:500]
            request = json.dumps(message.get("call")).encode() + b"\n"
            answer = solution.recv_line(deadline - now(), REPLY_BYTES) if solution.send(request) else None
            if answer is None:
                return False, "time limit exceeded or the solution died"
            if not checker.send(answer + b"\n"):
                return False, "the checker died"


def _runner(limits, source: str, mode: str, fn_name: str | None):
    """A started sandbox running rsft/code_runner.py on `source` in `mode`."""
    from rsft.sandbox import Sandbox

    sb = Sandbox(limits)
    try:
        sb.write("solution.py", source)
        sb.write("job.json", json.dumps({"mode": mode, "fn_name": fn_name, "inputs": str(sb.inputs)}))
        sb.start(RUNNER.read_text())
    except BaseException:
        sb.close()
        raise
    return sb


def _reply(sb, timeout_s: float) -> dict | None:
    """The sandbox's next line as a JSON object; None at the deadline, at its end, or if it is not one (a line the
    solution forged on the runner's channel, nested past the recursion limit, included)."""
    line = sb.recv_line(max(0.0, timeout_s), REPLY_BYTES)
    try:
        reply = json.loads(line) if line is not None else None
    except (ValueError, RecursionError):
        return None
    return reply if type(reply) is dict else None


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
    return run_check(doc["prompt"] + "\n" + code, doc["prompt"] + "\n" + doc["test"], doc["entry_point"],
                     timeout_s)[0]
