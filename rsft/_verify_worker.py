"""The math-verify worker: `python -m rsft._verify_worker`, driven by rsft.math_grading.MathVerifier over its pipes.

A separate interpreter started as a module, never by re-importing the caller's `__main__`, so grading works
from any script, thread or notebook. One JSON line in per request, `[gold, answer, config]`, one line out, `true`
or `false`; "ready" once math-verify has imported. Exits when its stdin closes (the grading process ended).
"""
import json
import os
import sys


def main() -> None:
    import resource

    out = os.fdopen(os.dup(1), "w")  # the protocol's own copy of stdout; anything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # 2 GiB: a runaway sympy dies, not the caller
    except (ValueError, OSError):
        pass
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = {
        "default": [LatexExtractionConfig(), ExprExtractionConfig()],  # math-verify's own default, as the paper ran
        # only answers it finds after an anchor ("answer is", "Answer:", "final answer"), never a bare last number
        "anchored": [LatexExtractionConfig(try_extract_without_anchor=False),
                     ExprExtractionConfig(try_extract_without_anchor=False)],
    }
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            gold, answer, config = json.loads(line)
            # gold first: verify(gold, answer) is not symmetric, and the gold side is the trusted one. parse and
            # verify keep their own 5 s limits (signal.alarm works here: this is the worker's main thread)
            ok = bool(verify(parse(gold), parse(answer, extraction_config=configs[config])))
        except BaseException:  # noqa: BLE001  (a MemoryError or a sympy crash is a wrong answer, not a crash)
            ok = False
        out.write("true\n" if ok else "false\n")
        out.flush()


if __name__ == "__main__":
    main()
