"""Run untrusted Python (model-written code) in a separate, limited interpreter.

Each sandbox is a fresh `python -I` process (no user site, no PYTHON* variables, no script dir on sys.path) in a
new session, in a temporary work directory, with an environment built from nothing (so API keys and tokens in
the evaluator's environment are not there). Before the untrusted script runs, a bootstrap (this file, run as a
script) sets kernel limits and installs a Python audit hook (PEP 578):

  limits (setrlimit)   address space (MemoryError past it), CPU seconds (SIGKILL past it), size of any file it
                       writes (stdout included), open files, no core dumps, and a process/thread count cap
  audit hook           refuses to start processes (fork, exec, spawn, system, subprocess) or signal others,
                       to load native code (ctypes, cffi) or open sockets, to change its limits, to write,
                       delete or rename outside its work directory, and to read outside the Python
                       installation and its work directory (so no ~/.cache/huggingface/token, no
                       /proc/<parent>/environ)
  parent               kills the whole process group on a wall-clock deadline and again when done; removes
                       the work directory

This contains what model code does by accident (infinite loops, memory blow-ups, fork bombs, stray writes,
floods of output) and keeps secrets out of its reach. It is not a security boundary against a program written to
escape (PEP 578 hooks are not one, and RLIMIT_NPROC does not bind root): evaluate models you do not trust inside
a container or VM as well.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BOOT = Path(__file__).resolve()  # this file is also the bootstrap (see _boot at the bottom)


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0  # run_python's deadline for the whole run, start included (a session sets its own)
    cpu_s: int = 10  # RLIMIT_CPU: CPU seconds over all threads; SIGKILL one second past it
    memory_bytes: int = 4 << 30  # RLIMIT_AS, 4 GiB: a bigger allocation raises MemoryError
    file_bytes: int = 64 << 20  # RLIMIT_FSIZE, 64 MiB: largest file it may write (its stdout included)
    tasks: int = 64  # RLIMIT_NPROC headroom: threads it may start (fork/exec are refused by the hook anyway)
    open_files: int = 64  # RLIMIT_NOFILE


@dataclass(frozen=True)
class Result:
    returncode: int | None  # negative: killed by that signal; None: still running at the deadline (then killed)
    timed_out: bool
    stdout: str
    stderr: str
    wall_s: float


# a clean environment: nothing from the evaluator's (tokens, keys, proxies, CUDA settings)
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
             "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class Sandbox:
    """A temporary directory and, once started, one limited interpreter running a script in it.

    The script's stdin/stdout are pipes to this object (`send`, `recv_line`), so a caller can run a protocol with
    it under per-message deadlines; `run_python` below is the one-shot form.
    """

    def __init__(self, limits: Limits = Limits()):
        import tempfile

        self.limits = limits
        self.root = Path(os.path.realpath(tempfile.mkdtemp(prefix="rsft-sandbox-")))
        self.work = self.root / "work"  # the only place the script may write
        self.inputs = self.root / "inputs"  # written by us while it runs; it may read them, not change them
        self.work.mkdir()
        self.inputs.mkdir()
        self.proc = None
        self._buf = b""
        self._started = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, name: str, data: str | bytes) -> Path:
        """A file in the work directory, before the start (afterwards the script owns that directory)."""
        assert self.proc is None, "write inputs with write_input once the script runs"
        path = self.work / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def write_input(self, name: str, data: str | bytes) -> Path:
        path = self.inputs / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def read(self, name: str, max_bytes: int | None = None) -> bytes | None:
        """A file the script wrote in its work directory; None if missing, not a plain file (a symlink, a fifo)
        or larger than max_bytes (default: the file-size limit)."""
        import stat

        try:
            fd = os.open(self.work / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > (max_bytes or self.limits.file_bytes):
                return None
            return f.read()

    def start(self, script: str) -> None:
        import subprocess

        self.write("main.py", script)
        config = {"work": str(self.work), "limits": asdict(self.limits),
                  "read_roots": _read_roots(self.work) + [str(self.inputs.resolve())]}
        self._stderr = open(self.root / "stderr", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-X", "utf8", str(BOOT), json.dumps(config)],
            cwd=self.work, env=dict(CLEAN_ENV, HOME=str(self.work), TMPDIR=str(self.work)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True, close_fds=True)  # own process group: killpg reaches every descendant
        self._started = time.monotonic()

    def send(self, data: bytes) -> bool:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):  # it exited, or the pipe was closed under us
            return False

    def recv_line(self, timeout_s: float, max_bytes: int = 1 << 20) -> bytes | None:
        """The script's next stdout line, or None at the deadline, at EOF, or past max_bytes (then it is killed)."""
        import selectors

        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or len(self._buf) > max_bytes or not sel.select(left):
                    self.kill()
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def wait(self, timeout_s: float) -> tuple[int | None, bool]:
        import subprocess

        try:
            return self.proc.wait(timeout=max(0.0, timeout_s)), False
        except subprocess.TimeoutExpired:
            self.kill()
            return None, True

    def stderr(self, max_bytes: int = 1 << 16) -> str:
        self._stderr.flush()
        with open(self.root / "stderr", "rb") as f:
            return f.read(max_bytes).decode(errors="replace")

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group outlives its leader while members remain
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        import shutil

        if self.proc is not None:
            self.kill()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc.wait()
            self._stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)


def run_python(code: str, stdin: bytes = b"", limits: Limits = Limits(), max_output: int = 1 << 20) -> Result:
    """Run `code` as __main__ in a sandbox, feeding it `stdin`; stdout/stderr come back capped at max_output."""
    import threading

    with Sandbox(limits) as sb:
        sb.start(code)
        out = bytearray()

        def drain():  # read concurrently, so a chatty script cannot block on a full pipe
            while chunk := sb.proc.stdout.read1(1 << 16):
                if len(out) < max_output:
                    out.extend(chunk[: max_output - len(out)])

        def feed():  # in a thread too: a script that never reads stdin must not block us past the deadline
            sb.send(stdin)
            try:
                sb.proc.stdin.close()
            except OSError:
                pass

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        threading.Thread(target=feed, daemon=True).start()
        rc, timed_out = sb.wait(limits.wall_s - (time.monotonic() - sb._started))
        sb.kill()  # whatever it left behind in its group
        reader.join(timeout=2)
        wall = time.monotonic() - sb._started
        return Result(rc, timed_out, out.decode(errors="replace"), sb.stderr(max_output), round(wall, 3))


def _read_roots(work: Path) -> list[str]:
    """Where sandboxed code may read: its work dir, the Python installation, shared system files."""
    roots = {str(work), sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr/lib", "/usr/share/zoneinfo",
             "/etc/localtime", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"}
    roots.update(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    return sorted(os.path.realpath(r) for r in roots)


# ------------------------------------------------------------------------------------------------ inside


_NO_PROCESSES = {"os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile",
                 "subprocess.Popen", "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit",
                 "socket.__new__", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "sys.remote_exec"}
_MUTATIONS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
              "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr",
              "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree"}
_NO_IMPORT = {"_posixsubprocess", "_ctypes", "ctypes", "_cffi_backend", "cffi", "_xxsubinterpreters", "pty"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _audit_hook(work: str, read_roots: list[str]):
    me = os.getpid()
    readable = tuple(read_roots) + (f"/proc/{me}",)

    def under(path, roots) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        try:
            p = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)

    def hook(event, args):
        if event == "open":
            path, _mode, flags = args
            writing = flags is not None and flags & _WRITE_FLAGS
            if path is not None and not under(path, (work,) if writing else readable):
                raise PermissionError(f"sandbox: may not {'write' if writing else 'read'} {path!r}")
        elif event in _NO_PROCESSES:
            if event in ("os.kill", "os.killpg") and args and args[0] in (0, me):
                return  # signalling itself is harmless
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event in _MUTATIONS:
            for a in args:
                if isinstance(a, (str, bytes, os.PathLike)) and not under(a, (work,)):
                    raise PermissionError(f"sandbox: {event} outside the work directory")
        elif event == "import" and args[0] in _NO_IMPORT:
            raise ImportError(f"sandbox: import {args[0]} is not allowed")

    return hook


def _tasks_of_uid(uid: int) -> int:
    """Threads the user already runs (RLIMIT_NPROC counts them all, not only ours)."""
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                n += len(os.listdir(f"/proc/{pid}/task")) if os.stat(f"/proc/{pid}").st_uid == uid else 0
            except OSError:
                pass
    return n


def _boot(config: dict) -> None:
    """Runs in the sandboxed interpreter, before the untrusted script: limits, audit hook, then the script."""
    import resource
    import runpy

    lim = config["limits"]
    work = config["work"]
    os.chdir(work)
    for what, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_AS, lim["memory_bytes"]),
                        (resource.RLIMIT_FSIZE, lim["file_bytes"]), (resource.RLIMIT_NOFILE, lim["open_files"]),
                        (resource.RLIMIT_NPROC, _tasks_of_uid(os.getuid()) + lim["tasks"])):
        resource.setrlimit(what, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 1))
    sys.addaudithook(_audit_hook(work, config["read_roots"]))
    sys.argv = ["main.py"]
    runpy.run_path(os.path.join(work, "main.py"), run_name="__main__")


if __name__ == "__main__":
    _boot(json.loads(sys.argv[1]))
