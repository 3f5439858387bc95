"""Model-written code: graded right when right, and contained when it loops, hogs memory, forks, writes outside
its directory or looks for secrets (rsft/sandbox.py, rsft/code_runner.py, rsft.code_grading.grade_code)."""
import os
import signal
import time

import pytest

from rsft.code_grading import extract_code, grade_code, grade_humaneval, run_code_tests, same_stdout
from rsft.sandbox import Limits, Sandbox, run_python

# LiveCodeBench's two test styles, as its data encodes them
STDIN_TESTS = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
               {"input": "40 2\n", "output": "42", "testtype": "stdin"}]
CALL_TESTS = [{"input": "[2,7,11,15]\n9", "output": "[0, 1]", "testtype": "functional"},
              {"input": "[3,2,4]\n6", "output": "[1, 2]", "testtype": "functional"}]
ADD = "a, b = map(int, input().split())\nprint(a + b)"
TWO_SUM = """class Solution:
    def twoSum(self, nums: List[int], target: int) -> List[int]:
        seen = {}
        for i, x in enumerate(nums):
            if target - x in seen:
                return (seen[target - x], i)
            seen[x] = i"""


def reply(code: str) -> str:
    return f"<think>\nLet me write it.\n```python\nprint('draft')\n```\n</think>\n\nHere:\n```python\n{code}\n```\n"


@pytest.mark.parametrize("code,ok", [
    (ADD, True),
    ("a, b = map(int, input().split())\nprint(a * b)", False),
    ("import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))", True),  # fd-level stdin works
    ("print(sum(map(int, open(0).read().split())))", True),
    ("def main():\n    print(sum(map(int, input().split())))\nif __name__ == '__main__':\n    main()", True),
    ("print(sum(map(int, input().split())))\nexit()", True),  # exit() after the answer is a normal end
    ("print(sum(map(int, input().split()))", False),  # syntax error
    ("raise ValueError('boom')", False),
])
def test_stdin_programs_pass_only_when_every_output_matches(code, ok):
    assert grade_code(reply(code), STDIN_TESTS) is ok


@pytest.mark.parametrize("code,ok", [
    (TWO_SUM, True),  # List without an import, a tuple answer for a list: accepted as LiveCodeBench does
    (TWO_SUM.replace("(seen[target - x], i)", "[i, seen[target - x]]"), False),
    ("def twoSum(nums, target):\n    print('debug')\n    return [nums.index(target - nums[-1]), len(nums) - 1]\n"
     "    # top-level function", False),
    ("def twoSum(nums, target):\n    print('not the answer')\n"
     "    return [[i, j] for i in range(len(nums)) for j in range(i + 1, len(nums)) if nums[i] + nums[j] == target][0]",
     True),
])
def test_functional_tests_call_the_named_method_and_compare_json(code, ok):
    assert grade_code(reply(code), CALL_TESTS, fn_name="twoSum") is ok


def test_the_last_closed_python_block_after_thinking_is_the_answer():
    assert extract_code(reply(ADD)) == ADD + "\n"
    assert extract_code("<think>\n```python\nprint(1)\n```") is None  # thinking never closed: truncated
    assert extract_code("</think>```python\nx = 1\n```\n```python\nprint(2)") == "x = 1\n"  # last one unclosed
    assert extract_code("</think>```python\nprint(1)\n```\n```text\nnot code\n```") == "print(1)\n"
    assert extract_code("</think>no code at all") is None
    assert extract_code("```" * 100_000) is None  # linear: fences only split the text


def test_output_comparison_is_livecodebench_s():
    assert same_stdout("3 \n4\n\n", "3\n4")  # surrounding whitespace ignored
    assert same_stdout("0.50 1", "0.5 1.0")  # numbers compared as decimals
    assert not same_stdout("3\n4", "3 4")
    assert not same_stdout("yes", "Yes")


def test_an_infinite_loop_is_killed_at_the_time_limit_and_scores_0():
    stubborn = "while True:\n    try:\n        pass\n    except BaseException:\n        pass"  # ignores signals
    t = time.perf_counter()
    ok, why = run_code_tests(stubborn, STDIN_TESTS, timeout_s=1.0)
    assert not ok and "time limit" in why
    assert time.perf_counter() - t < 3.0


def test_cpu_time_is_capped_even_without_a_wall_deadline():
    t = time.perf_counter()
    r = run_python("while True: pass", limits=Limits(wall_s=30, cpu_s=1))
    assert r.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not r.timed_out
    assert time.perf_counter() - t < 5


def test_a_huge_allocation_fails_with_memory_error():
    assert not grade_code(reply("x = bytearray(64 << 30)\n" + ADD), STDIN_TESTS)  # 64 GiB: refused at once
    r = run_python("x = bytearray(512 << 20)", limits=Limits(memory_bytes=256 << 20))
    assert r.returncode == 1 and "MemoryError" in r.stderr


def test_an_output_flood_stops_at_the_file_size_limit():
    t = time.perf_counter()
    r = run_python("import sys\nwhile True:\n    sys.stderr.write('x' * 65536)", limits=Limits(file_bytes=1 << 20))
    assert r.returncode != 0 and len(r.stderr) <= 1 << 20  # Python ignores SIGXFSZ: the write fails (EFBIG)
    assert time.perf_counter() - t < 5


def test_writes_deletes_and_renames_outside_the_work_dir_are_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for code in (f"open({str(tmp_path / 'new.txt')!r}, 'w').write('x')",
                 f"import os; os.close(os.open({str(tmp_path / 'new.txt')!r}, os.O_WRONLY | os.O_CREAT))",
                 f"import os; os.remove({str(victim)!r})",
                 f"import os; os.rename({str(victim)!r}, 'mine.txt')",
                 f"import os; os.symlink({str(victim)!r}, 'link.txt'); open('link.txt', 'w').write('x')",
                 f"import shutil; shutil.rmtree({str(tmp_path)!r})"):
        r = run_python(code)
        assert r.returncode == 1 and "PermissionError: sandbox" in r.stderr, code
    assert not (tmp_path / "new.txt").exists() and victim.read_text() == "keep me"
    r = run_python("import os\nopen('scratch.txt', 'w').write('ok')\nos.mkdir('d')\nprint(open('scratch.txt').read())")
    assert r.returncode == 0 and r.stdout == "ok\n"  # its own directory is writable


@pytest.mark.parametrize("code", [
    "import os\nwhile True:\n    os.fork()",
    "import subprocess\nsubprocess.run(['sh', '-c', 'echo pwned'])",
    "import os\nos.system('echo pwned')",
    "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo pwned'])",
    "import multiprocessing as mp\nmp.Process(target=print).start()",
    "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)",
    "import ctypes\nctypes.CDLL(None).fork()",
    "import socket\nsocket.create_connection(('127.0.0.1', 22))",
    "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
])
def test_processes_signals_native_code_sockets_and_limits_are_refused(code):
    r = run_python(code)
    assert r.returncode == 1 and "sandbox:" in r.stderr and "pwned" not in r.stdout, (code, r)


def test_secrets_in_the_environment_and_on_disk_are_out_of_reach(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_test_secret")
    r = run_python("import os\nprint(sorted(os.environ.items()))")
    assert r.returncode == 0 and "secret" not in r.stdout and "OPENAI" not in r.stdout
    secret = tmp_path / "token"
    secret.write_text("hf_test_secret")
    for path in (str(secret), "/proc/{os.getppid()}/environ", "/proc/1/environ"):
        r = run_python(f"import os\nprint(open(f{path!r}).read())")
        assert r.returncode == 1 and "may not read" in r.stderr and "secret" not in r.stdout, path


def test_its_directory_is_removed_and_its_process_group_killed():
    with Sandbox() as sb:
        sb.start("import time\nprint('up', flush=True)\ntime.sleep(60)")
        assert sb.recv_line(10) == b"up"
        root, pid = sb.root, sb.proc.pid
    assert not root.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


# HumanEval's shape: the prompt holds imports, a helper and the stub; the test's check may use the helper too
HUMANEVAL_DOC = {"prompt": 'from typing import List\n\n\ndef double(x: int) -> int:\n    return 2 * x\n\n\n'
                           'def quad(xs: List[int]) -> List[int]:\n    """Each number times four, using double."""\n',
                 "entry_point": "quad",
                 "test": "def check(candidate):\n    assert candidate([1, 2]) == [4, 8]\n"
                         "    assert candidate([3]) == [double(6)]\n"}


@pytest.mark.parametrize("code,ok", [
    ("def quad(xs: List[int]) -> List[int]:\n    return [double(double(x)) for x in xs]", True),  # a full function
    ("    return [4 * x for x in xs]", True),  # a bare body completes the prompt's stub, as HumanEval's completions do
    ("def quad(xs):\n    return [3 * x for x in xs]", False),
    ("def quadruple(xs):\n    return [4 * x for x in xs]", False),  # another name: the stub (None) is checked
    ("import sys\nsys.exit(0)", False),  # leaving before check() is a failure, not a pass
    ("def quad(xs):\n    return [4 * x for x in xs]\nif __name__ == '__main__':\n    print(input())", True),
])
def test_humaneval_passes_when_check_returns(code, ok):
    assert grade_humaneval(reply(code), HUMANEVAL_DOC) is ok


def test_a_hanging_humaneval_completion_is_killed_and_scores_0():
    t = time.perf_counter()
    assert not grade_humaneval(reply("def quad(xs):\n    while True:\n        pass"), HUMANEVAL_DOC, timeout_s=1.0)
    assert time.perf_counter() - t < 4.0
