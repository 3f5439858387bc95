"""Runs inside rsft.sandbox (standard library only): a solution's tests as the parent asks, or HumanEval's check.

Nothing this script sends is a verdict the parent believes. The parent decides every pass itself, from plain data:

  mode "stdin"  (LiveCodeBench) for test i the parent writes INPUTS/i.txt and sends "i"; the program runs with it
                on stdin and the reply {"i", "status", "error", "stdout"} carries what it printed, which the parent
                compares with the expected output (that never enters the sandbox)
  mode "paper"  (LiveCodeBench's `value`) the same exchange, each test run as the paper's runner ran it (run_paper)
  mode "call"   (LiveCodeBench) the same for Solution().fn_name / fn_name called with one JSON argument per input
                line; the reply carries its return value as JSON ("value"), compared in the parent
  mode "serve"  (HumanEval, the solution's side) fn_name answers calls: each request line {"args", "kwargs"} in
                the tagged encoding below, each reply {"value"} or {"error"}. It never sees the tests.
  mode "check"  (HumanEval, the tests' side, a second sandbox) solution.py is the problem's prompt and test
                program, trusted; on "go" it runs check(candidate) where candidate sends each call out through
                the parent to the "serve" sandbox and decodes the reply into genuine builtins (decode below), so
                every comparison in the asserts is made by this process's own int/str/list, never by an object
                whose __eq__ the solution wrote. Its last line is {"verdict": "pass" | "fail", "error"}.

Whatever a solution does to its own process (builtins, json, exec, fake lines on its stdout, os._exit) changes
only the values it returns: it cannot reach the checker's process, whose messages the parent reads on a pipe only
the checker holds.
"""
import builtins
import gc
import io
import json
import os
import sys

# Names LeetCode-style code uses without importing (List, deque, heappush, gcd, ...), as LiveCodeBench's runner
# provides them; `from builtins import *` restores what `math`/`operator` shadow (pow, abs), typing comes last.
PRELUDE = ("import sys, math, heapq, bisect, itertools, functools, operator, collections, string; "
           "from collections import *; from heapq import *; from bisect import *; from itertools import *; "
           "from functools import *; from math import *; from operator import *; from string import *; "
           "from builtins import *; from typing import *; sys.setrecursionlimit(50000)\n")
OUTPUT_CAP = 16 << 20  # bytes of a program's stdout sent back per test

# The paper's runner (its evalchemy LiveCodeBench/livecodebench_utils.py @ 3378e2b: reliability_guard, run_test_std,
# run_tests_for_one_example) disables these before the first test; a program calling one fails (None is not callable).
# It also sets subprocess.Popen to None: the sandbox refuses `import subprocess` outright (paper_guard)
PAPER_DISABLED = {
    "builtins": "exit quit",
    "os": "kill system putenv remove removedirs rmdir fchdir setuid fork forkpty killpg rename renames truncate "
          "replace unlink fchmod fchown chmod chown chroot lchflags lchmod lchown getcwd chdir",
    "shutil": "rmtree move chown",
}
PAPER_HIDDEN_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")  # `import resource` raises ImportError


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


# The tagged encoding of HumanEval's values: JSON null/bool/number/string/list stand for themselves (NaN and
# infinities as Python's json writes them); everything else is a one-key object, so a tuple stays a tuple.
def encode(x):
    """The solution's side: its return value as plain data (subclasses of int, str, list... become the base type).
    Nothing relies on this function: the checker's decode is what refuses anything else."""
    if x is None or type(x) in (bool, int, float, str):
        return x
    if isinstance(x, str):
        return str.__str__(x)
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if isinstance(x, list):
        return [encode(v) for v in x]
    if isinstance(x, tuple):
        return {"tuple": [encode(v) for v in x]}
    if isinstance(x, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in x.items()]}
    if isinstance(x, (set, frozenset)):
        return {"frozenset" if isinstance(x, frozenset) else "set": [encode(v) for v in x]}
    if isinstance(x, bytes):
        return {"bytes": bytes(x).hex()}
    if isinstance(x, complex):
        return {"complex": [x.real, x.imag]}
    raise TypeError(f"a {type(x).__name__} is not plain data")


def decode(x):
    """Genuine builtins only: anything but the encoding above is refused."""
    t = type(x)
    if x is None or t in (bool, int, float, str):
        return x
    if t is list:
        return [decode(v) for v in x]
    if t is dict and len(x) == 1:
        (tag, v), = x.items()
        if tag == "tuple" and type(v) is list:
            return tuple(decode(e) for e in v)
        if tag == "dict" and type(v) is list and all(type(p) is list and len(p) == 2 for p in v):
            return {decode(k): decode(e) for k, e in v}
        if tag in ("set", "frozenset") and type(v) is list:
            return (set if tag == "set" else frozenset)(decode(e) for e in v)
        if tag == "bytes" and type(v) is str:
            return bytes.fromhex(v)
        if tag == "complex" and type(v) is list and len(v) == 2 and all(type(e) in (int, float) for e in v):
            return complex(*v)
    raise ValueError("not plain data")


def run_stdin(code, input_path: str) -> dict:
    redirect(input_path, "out.txt")
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit:
        pass  # exit() after printing the answer is a normal end
    finally:
        sys.stdout.flush()
    with open("out.txt", "rb") as f:
        return {"stdout": f.read(OUTPUT_CAP).decode(errors="replace")}


def paper_source(source: str) -> str:
    """The program as the paper exec'd it: `__name__ = "__main__"` put first only when the text holds
    `__name__ == "__main__"` (double quotes); otherwise __name__ is "builtins" and an `if __name__ ...` block never
    runs."""
    return f'__name__ = "__main__"\n{source}' if '__name__ == "__main__"' in source else source


def paper_guard() -> None:
    """The paper's reliability_guard, once, before the first test (and, as there, for all of them). subprocess is
    left out: the sandbox refuses its import already (so a program that only imports it fails here, not there)."""
    import shutil

    modules = {"builtins": builtins, "os": os, "shutil": shutil}
    for module, names in PAPER_DISABLED.items():
        for name in names.split():
            setattr(modules[module], name, None)
    for name in PAPER_HIDDEN_MODULES:
        sys.modules[name] = None


def run_paper(code, input_path: str) -> dict:
    """One test as the paper's run_test_std: sys.stdin an io.StringIO of the input, sys.stdout an io.StringIO, the
    code exec'd in fresh globals `{}`. An Exception fails the test (the reply's "error"); any other BaseException
    (SystemExit from sys.exit(), even after a right answer) escapes and ends the process, as it ended the paper's:
    that test and every later one fail. fd 0 and 1 are /dev/null (the paper's child had /dev/null on fd 0, and fd 1
    was not read), so open(0), sys.stdin.buffer and os.write(1, ...) find no input and print nothing counted."""
    with open(input_path) as f:
        test_input = f.read()
    output = io.StringIO()
    sys.stdout, sys.stdin = output, io.StringIO(test_input)
    try:
        exec(code, {})
    except Exception as e:  # noqa: BLE001
        return {"status": "error", "error": describe(e)}
    finally:
        sys.stdout = sys.__stdout__
    return {"stdout": output.getvalue()[:OUTPUT_CAP]}


def load(code, state: dict) -> dict:
    """The solution module, run once (as LiveCodeBench's runner and HumanEval's program do)."""
    if "namespace" not in state:  # __name__ is not "__main__": the reply's own demo code does not run
        state["namespace"] = {"__name__": "solution", "__builtins__": builtins}
        exec(code, state["namespace"])
    return state["namespace"]


def run_call(code, state: dict, fn_name: str, input_path: str) -> dict:
    with open(input_path) as f:
        args = [json.loads(line) for line in f.read().split("\n") if line.strip()]  # one JSON argument per line
    redirect(input_path, "printed.txt")  # what the code prints is not its answer
    try:
        namespace = load(code, state)
        cls = namespace.get("Solution")
        fn = getattr(cls(), fn_name) if isinstance(cls, type) else namespace[fn_name]
        value = fn(*args)
    finally:
        sys.stdout.flush()
    if isinstance(value, tuple):
        value = list(value)  # as LiveCodeBench: a tuple answer matches a list
    return {"value": json.dumps(value)}


def serve(code, fn_name: str, control_in, control_out) -> None:
    """HumanEval's solution side: load the module, then answer calls until the pipe closes."""
    redirect(os.path.devnull, "printed.txt")
    try:
        fn = load(code, {})[fn_name]
        ready = {"ready": True}
    except BaseException as e:  # noqa: BLE001  (a failing import, sys.exit(0) included, fails every call)
        fn, ready = None, {"ready": False, "error": describe(e)}
    send(control_out, ready)
    for line in control_in:
        try:
            request = json.loads(line)
            answer = {"value": encode(fn(*decode(request["args"]), **decode(request["kwargs"])))}
        except BaseException as e:  # noqa: BLE001
            answer = {"error": describe(e)}
        sys.stdout.flush()
        send(control_out, answer)


def check(program, entry_point: str, control_in, control_out) -> None:
    """HumanEval's tests side: the trusted program's check(candidate), candidate being the other sandbox."""
    redirect(os.path.devnull, "printed.txt")

    def candidate(*args, **kwargs):
        send(control_out, {"call": {"args": encode(list(args)), "kwargs": encode(kwargs)}})
        line = control_in.readline()
        reply = json.loads(line) if line else {"error": "the solution's process is gone"}
        if type(reply) is not dict or "value" not in reply:
            raise RuntimeError(f"candidate failed: {str(reply.get('error') if type(reply) is dict else '')[:300]}")
        return decode(reply["value"])

    namespace = {"__name__": "check", "__builtins__": builtins}
    try:
        exec(program, namespace)
        namespace[entry_point] = candidate  # the test program may name the function as well
        namespace["check"](candidate)
        verdict = {"verdict": "pass"}
    except BaseException as e:  # noqa: BLE001
        verdict = {"verdict": "fail", "error": describe(e)}
    sys.stdout.flush()
    send(control_out, verdict)


def send(control_out, message: dict) -> None:
    control_out.write(json.dumps(message) + "\n")
    control_out.flush()


def main() -> None:
    control_in = os.fdopen(os.dup(0), "r")
    control_out = os.fdopen(os.dup(1), "w")
    with open("job.json") as f:
        job = json.load(f)
    with open("solution.py") as f:
        source = f.read()
    mode = job["mode"]
    if mode == "paper":  # the paper's environment: no prelude, the default recursion and int-digit limits
        source = paper_source(source)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
    else:
        sys.set_int_max_str_digits(0)  # big-integer answers print in full
    try:
        prelude = PRELUDE if mode in ("stdin", "call") else ""  # HumanEval's program brings its own imports
        code, failure = compile(prelude + source, "solution.py", "exec"), None
    except BaseException as e:  # noqa: BLE001  (a syntax error fails every test)
        code, failure = None, describe(e)
    if mode == "paper":
        paper_guard()
        send(control_out, {"ready": True})
        for line in control_in:
            i = int(line)
            reply = {"status": "error", "error": failure} if failure else run_paper(code, f"{job['inputs']}/{i}.txt")
            send(control_out, {"i": i, "status": "ok", "error": None, **reply})
        return
    if mode == "serve":
        if failure is not None:
            return send(control_out, {"ready": False, "error": failure})
        return serve(code, job["fn_name"], control_in, control_out)
    if mode == "check":
        send(control_out, {"ready": failure is None, "error": failure})
        if failure is None and control_in.readline().strip() == "go":
            check(code, job["fn_name"], control_in, control_out)
        return
    state: dict = {}
    send(control_out, {"ready": True})  # started and compiled: the time limit of each test starts from here
    for line in control_in:
        i = int(line)
        reply, error = {}, failure
        if error is None:
            try:
                path = os.path.join(job["inputs"], f"{i}.txt")
                reply = run_stdin(code, path) if mode == "stdin" else run_call(code, state, job["fn_name"], path)
            except BaseException as e:  # noqa: BLE001
                error = describe(e)
        send(control_out, {"i": i, "status": "ok" if error is None else "error", "error": error, **reply})


if __name__ == "__main__":
    main()
