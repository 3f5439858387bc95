"""Runs inside rsft.sandbox (standard library only): a solution's tests, one at a time, as the parent asks.

Protocol. Before the start the parent writes job.json ({"mode": "stdin" | "call", "fn_name", "inputs"}) and
solution.py; this script answers {"ready": true} once it has compiled the solution. For test i the parent writes
INPUTS/i.txt and sends the line "i"; this script runs that test and answers {"i": i, "status": "ok" | "error",
"error": ...}. A stdin-style program's stdout is left in out.txt, a LeetCode-style function's return value (JSON)
in ret.json. The parent compares them with the expected outputs, which never enter the sandbox, and stops at the
first failure; its deadline for each answer is the time limit. Mode "check" (HumanEval) has no outputs to compare:
INPUTS/i.txt is a test program whose check(candidate) asserts, and "ok" means it returned.
"""
import builtins
import gc
import json
import os
import sys

# Names LeetCode-style code uses without importing (List, deque, heappush, gcd, ...), as LiveCodeBench's runner
# provides them; `from builtins import *` restores what `math`/`operator` shadow (pow, abs), typing comes last.
PRELUDE = ("import sys, math, heapq, bisect, itertools, functools, operator, collections, string; "
           "from collections import *; from heapq import *; from bisect import *; from itertools import *; "
           "from functools import *; from math import *; from operator import *; from string import *; "
           "from builtins import *; from typing import *; sys.setrecursionlimit(50000)\n")


def redirect(stdin_path: str, stdout_path: str) -> None:
    """Point fd 0 and fd 1 (and sys.stdin/sys.stdout) at files, so input(), sys.stdin.buffer, open(0) all work."""
    gc.collect()  # a file object the last test left on fd 0 or 1 (open(0)) closes now, not during this test
    for target, fd in ((0, os.open(stdin_path, os.O_RDONLY)),
                       (1, os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))):
        if fd != target:  # the last test may have closed fd 0 or 1, so os.open can hand out that very number
            os.dup2(fd, target)
            os.close(fd)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)


def describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:500]


def run_stdin(code, input_path: str) -> None:
    redirect(input_path, "out.txt")
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit:
        pass  # exit() after printing the answer is a normal end
    finally:
        sys.stdout.flush()


def run_call(code, state: dict, fn_name: str, input_path: str) -> None:
    with open(input_path) as f:
        args = [json.loads(line) for line in f.read().split("\n") if line.strip()]  # one JSON argument per line
    redirect(input_path, "printed.txt")  # what the code prints is not its answer
    try:
        if "namespace" not in state:  # the module runs once, as LiveCodeBench's; each test gets a new Solution()
            state["namespace"] = {"__name__": "solution", "__builtins__": builtins}
            exec(code, state["namespace"])
        cls = state["namespace"].get("Solution")
        fn = getattr(cls(), fn_name) if isinstance(cls, type) else state["namespace"][fn_name]
        value = fn(*args)
    finally:
        sys.stdout.flush()
    if isinstance(value, tuple):
        value = list(value)  # as LiveCodeBench: a tuple answer matches a list
    with open("ret.json", "w") as f:
        json.dump(value, f)


def run_check(code, state: dict, entry_point: str, input_path: str) -> None:
    """HumanEval: the solution module runs once; the test program runs in that same namespace (its check may use
    the prompt's helper functions, as in HumanEval's one-program execution) and check(entry_point) must return."""
    with open(input_path) as f:
        test = compile(f.read(), "test.py", "exec")
    redirect(input_path, "printed.txt")  # what the code prints is not its answer
    try:
        if "namespace" not in state:  # __name__ is not "__main__": the reply's own demo code does not run
            state["namespace"] = {"__name__": "solution", "__builtins__": builtins}
            exec(code, state["namespace"])
        namespace = state["namespace"]
        exec(test, namespace)
        namespace["check"](namespace[entry_point])
    finally:
        sys.stdout.flush()


def main() -> None:
    sys.set_int_max_str_digits(0)  # big-integer answers print in full
    control_in = os.fdopen(os.dup(0), "r")
    control_out = os.fdopen(os.dup(1), "w")
    with open("job.json") as f:
        job = json.load(f)
    with open("solution.py") as f:
        source = f.read()
    try:
        prelude = "" if job["mode"] == "check" else PRELUDE  # HumanEval's program brings its own imports
        code, failure = compile(prelude + source, "solution.py", "exec"), None
    except BaseException as e:  # noqa: BLE001  (a syntax error fails every test)
        code, failure = None, describe(e)
    state: dict = {}
    control_out.write('{"ready": true}\n')  # started and compiled: the time limit of each test starts from here
    control_out.flush()
    for line in control_in:
        i = int(line)
        error = failure
        if error is None:
            try:
                path = os.path.join(job["inputs"], f"{i}.txt")
                if job["mode"] == "stdin":
                    run_stdin(code, path)
                elif job["mode"] == "check":
                    run_check(code, state, job["fn_name"], path)
                else:
                    run_call(code, state, job["fn_name"], path)
            except BaseException as e:  # noqa: BLE001
                error = describe(e)
        control_out.write(json.dumps({"i": i, "status": "ok" if error is None else "error", "error": error}) + "\n")
        control_out.flush()


if __name__ == "__main__":
    main()
