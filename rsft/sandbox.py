"""Run untrusted Python (model-written code) in a separate interpreter whose boundary comes from the kernel.

One module of ~875 lines on purpose: it is the kit's one security boundary, reviewed as one file. The bootstrap
that runs inside the sandbox is this very file, started as a script (`python -I -S sandbox.py`) where no
site-packages exist, so it can import nothing of the kit; and the parent's half (limits, deadlines, the memory
reservation, the kill) and the child's half (namespaces, uid, Landlock, seccomp, rlimits) keep the same promises
(SECURITY.md). Split, a layer could be changed without its neighbours being read.

Each sandbox is a fresh `python -I -S` process in a new session, in a temporary work directory, with an environment
built from nothing (no API keys or tokens) and its stdin, stdout and stderr pipes to the evaluator. Before the
untrusted script runs, a bootstrap (this file, run as a script) puts it behind every layer this machine allows,
each tried in turn and recorded:

  mountns    (root, or a user namespace where unprivileged ones are allowed) a private mount namespace whose
             root is a fresh tmpfs holding only: the work directory, a tmpfs of Limits.disk_bytes (the disk
             quota for everything it writes: ENOSPC past it), the inputs directory read-only, the standard
             library (its site-packages an empty folder), the shared-library folders and
             /dev/{null,zero,random,urandom} (_read_roots). No site-packages, checkout, working directory,
             /proc, /sys, /home, /root, /tmp or data directory exists in its view; pivot_root, so nothing leads
             back out.
  netns      the same unshare gives it an empty network namespace (a loopback that is down): no network at all
  uid        (the evaluator is root) it runs as a fresh unprivileged uid with no groups and no capabilities, so
             it cannot signal or ptrace the evaluator, read root's files, or change its limits
  landlock   (Linux >= 5.13, unprivileged) a Landlock domain with the same filesystem view as an allow-list
             (read-only standard library and shared libraries, read-write work directory, nothing else; the
             standard library's folder may be listed, so site-packages' names show, never its files); from ABI 4 no TCP
             bind/connect, from ABI 6 no signals or abstract unix sockets leaving the domain. Landlock also
             forbids it mount changes and ptrace of anything outside
  seccomp    (x86_64) no_new_privs and a BPF filter: no fork, vfork, exec or non-thread clone (so no subprocess,
             os.system, multiprocessing), no sockets, ptrace, process_vm_*, mount, unshare, setns, chroot,
             bpf, io_uring, keyctl, perf events or module loading, no memfd, SysV shared memory or message queues
             (memory the address-space cap would not count); kill/tgkill only of itself
  limits     setrlimit: address space, CPU seconds (SIGKILL past them), file size, open files, no core dumps,
             threads
  audit hook a PEP 578 hook refusing the same things with readable errors. It is Python inside the process it
             guards (code can clear it), so it is only the first, friendly layer; nothing relies on it.

The parent kills the whole process group at its deadline and again when done, and removes the directory; with
no tmpfs quota (no mount namespace) it watches the work directory's size from outside and kills past the quota.
It kills a sandbox whose stderr passes Limits.file_bytes (kept in memory up to STDERR_KEEP, never on disk).
Deadlines run on `now()`, a clock that does not charge a sandbox for the time the evaluator itself stood still
(SIGSTOP, Ctrl-Z then `fg`). run_python and rsft.code_grading hold a `memory_reserved` while theirs run, so the
sandboxes at once can never take more than the memory the machine had available (address-space cap plus tmpfs
quota each).

A sandbox is contained when it has a filesystem boundary from the kernel: `mountns` or `landlock`. Without one
(not Linux, an old kernel, a container whose seccomp profile forbids both) nothing runs unless the caller opts in
(allow_unsafe=True or RSFT_UNSAFE_SANDBOX=1), and `mechanism()` says "none (unsafe opt-in)" (or the partial
layers it had, with the same suffix). `mechanism()` reports what this machine gives a sandbox, e.g.
"mountns+netns+uid+landlock7+seccomp", measured by starting one; record it with each result.

What it does not contain: CPU caches and timing side channels, the kernel itself (a kernel exploit escapes any of
these layers), reading the standard library and the system's shared libraries (no answers belong there), and, on
a machine where only Landlock below ABI 4 applies, UDP sockets and signals to same-uid processes (seccomp covers
both on x86_64). SECURITY.md says how each promise is tested.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BOOT = Path(__file__).resolve()  # this file is also the bootstrap (see _boot at the bottom)
UNSAFE_ENV = "RSFT_UNSAFE_SANDBOX"  # =1: run model code even where no kernel boundary is available
FS_BOUNDARIES = ("mountns", "landlock")  # one of these must have engaged for a run to count as contained


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0  # run_python's deadline for the whole run, start included (a session sets its own)
    cpu_s: int = 10  # RLIMIT_CPU: CPU seconds over all threads; SIGKILL one second past it
    memory_bytes: int = 4 << 30  # RLIMIT_AS, 4 GiB: a bigger allocation raises MemoryError
    file_bytes: int = 64 << 20  # RLIMIT_FSIZE, 64 MiB: largest file it may write; its stderr pipe kills past it
    disk_bytes: int = 128 << 20  # everything in its work directory together (tmpfs size, or the watcher's cap)
    tasks: int = 64  # RLIMIT_NPROC headroom: threads it may start (processes are refused by seccomp)
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
STARTUP_S = 10.0  # for the bootstrap to build its layers and report them
STDERR_KEEP = 1 << 20  # bytes of its stderr kept in memory (it is a pipe: nothing of it reaches the disk)


class SandboxError(RuntimeError):
    """The sandbox or the runner inside it could not start: a fault of the grader's machine, never a wrong answer."""


# ---- time: deadlines on a clock that does not charge the sandbox for the evaluator's own stops
TICK_S, LATE_S = 0.1, 1.0  # a ticker reads the clock every TICK_S; a read LATE_S later than due means a stop
_clock_lock = threading.Lock()
_clock = {"last": None, "stopped": 0.0}


def now() -> float:
    """time.monotonic() less the time this process stood still (SIGSTOP, Ctrl-Z then `fg`, or over a second
    without being scheduled): a sandbox keeps running meanwhile, and its answer waiting in the pipe counts. The gap
    is charged by whichever thread reads the clock first after it (a daemon ticker reads it every TICK_S)."""
    with _clock_lock:
        t = time.monotonic()
        if _clock["last"] is None:
            threading.Thread(target=_tick, name="rsft-sandbox-clock", daemon=True).start()
        elif t - _clock["last"] > TICK_S + LATE_S:
            _clock["stopped"] += t - _clock["last"] - TICK_S
        _clock["last"] = t
        return t - _clock["stopped"]


def _tick() -> None:
    while True:
        time.sleep(TICK_S)
        now()


# ---- memory: sandboxes at once bounded by what the machine has
_memory = threading.Condition()
_reserved = [0]


@functools.lru_cache(maxsize=1)
def machine_budget() -> int:
    """Bytes all sandboxes together may hold: the memory available when the first one is asked for (Linux's
    MemAvailable: the evaluator and its loaded model already counted), else half the machine's memory."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) << 10 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


@contextlib.contextmanager
def memory_reserved(sandboxes: int = 1, limits: "Limits | None" = None):
    """Hold the memory of `sandboxes` sandboxes (each: its address-space cap plus its tmpfs quota, the most it can
    take once memfd and shared memory are refused) until the block ends, waiting while others hold the budget; a
    reservation alone always goes ahead. run_python and rsft.code_grading take one around each sandbox they run."""
    limits = limits or Limits()
    need = sandboxes * (limits.memory_bytes + limits.disk_bytes)
    budget = machine_budget()
    with _memory:
        _memory.wait_for(lambda: _reserved[0] == 0 or _reserved[0] + need <= budget)
        _reserved[0] += need
    try:
        yield
    finally:
        with _memory:
            _reserved[0] -= need
            _memory.notify_all()


def unsafe_allowed(allow_unsafe: bool = False) -> bool:
    return allow_unsafe or os.environ.get(UNSAFE_ENV) == "1"


class Sandbox:
    """A temporary directory and, once started, one contained interpreter running a script in it.

    The script's stdin/stdout are pipes to this object (`send`, `recv_line`), so a caller can run a protocol with
    it under per-message deadlines; `run_python` below is the one-shot form. `layers` says what contained it.
    """

    def __init__(self, limits: Limits = Limits(), allow_unsafe: bool = False):
        import tempfile

        self.limits = limits
        self.allow_unsafe = unsafe_allowed(allow_unsafe)
        self.root = Path(os.path.realpath(tempfile.mkdtemp(prefix="rsft-sandbox-")))
        self.work = self.root / "work"  # the only place the script may write
        self.inputs = self.root / "inputs"  # written by us while it runs; it may read them, not change them
        self.work.mkdir()
        self.inputs.mkdir(mode=0o755)
        self.inputs.chmod(0o755)  # readable by the sandbox's own uid, whatever the umask
        self.proc = None
        self.layers: list[str] = []
        self._buf = bytearray()
        self._err = bytearray()
        self._err_thread = None
        self._started = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, name: str, data: str | bytes) -> Path:
        """A file in the work directory, before the start (the bootstrap copies it into its own tmpfs)."""
        assert self.proc is None, "write inputs with write_input once the script runs"
        path = self.work / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def write_input(self, name: str, data: str | bytes) -> Path:
        path = self.inputs / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        os.chmod(path, 0o644)  # readable by the sandbox's own uid
        return path

    def start(self, script: str) -> None:
        """Start the script behind the layers; raises UserError when none contains it and no opt-in was given."""
        import subprocess

        from rsft.errors import UserError

        self.write("main.py", script)
        status_r, status_w = os.pipe()
        config = {"work": str(self.work), "inputs": str(self.inputs), "newroot": str(self.root / "fs"),
                  "limits": asdict(self.limits), "read_roots": _view()[0], "list_dirs": _view()[1],
                  "masked": _view()[2],
                  "status_fd": status_w, "uid": _fresh_uid(), "allow_unsafe": self.allow_unsafe}
        try:  # -S: no site-packages on its path and no .pth file run; stderr a pipe, never a file of ours
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-X", "utf8", str(BOOT), json.dumps(config)],
                cwd=self.work, env=dict(CLEAN_ENV, HOME=str(self.work), TMPDIR=str(self.work)),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(status_w,),
                start_new_session=True, close_fds=True)  # own process group: killpg reaches every descendant
        finally:
            os.close(status_w)
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()
        self._started = now()
        status = _read_all(status_r, STARTUP_S)
        try:
            report = json.loads(status)
        except ValueError:
            self.kill()
            self._err_thread.join(timeout=2)
            raise SandboxError(f"sandbox: the bootstrap failed: {self.stderr()[-2000:]}") from None
        self.layers = report["layers"]
        if "refused" in report:
            self.kill()
            raise UserError(report["refused"])
        if "tmpfs" not in self.layers:
            threading.Thread(target=self._watch_disk, daemon=True).start()

    def _drain_stderr(self) -> None:
        """Keep the first STDERR_KEEP bytes of its stderr; past file_bytes in all, kill it (a flood, not a trace)."""
        total = 0
        while chunk := self.proc.stderr.read1(1 << 16):
            total += len(chunk)
            if len(self._err) < STDERR_KEEP:
                self._err += chunk[:STDERR_KEEP - len(self._err)]
            if total > self.limits.file_bytes:
                self.kill()

    def _watch_disk(self) -> None:
        """Without a tmpfs quota: kill the group once its work directory holds more than disk_bytes."""
        while self.proc.poll() is None:
            if _tree_bytes(self.work) > self.limits.disk_bytes:
                self.kill()
                return
            time.sleep(0.05)

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

        deadline = now() + timeout_s
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while (end := self._buf.find(b"\n")) < 0:
                if len(self._buf) > max_bytes:
                    self.kill()
                    return None
                left = deadline - now()  # at the deadline, an answer already waiting in the pipe still counts
                if not sel.select(min(max(left, 0.0), TICK_S)):
                    if left <= 0:
                        self.kill()
                        return None
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                self._buf += chunk
        line = bytes(self._buf[:end])
        del self._buf[:end + 1]
        return line

    def wait(self, timeout_s: float) -> tuple[int | None, bool]:
        import subprocess

        deadline = now() + timeout_s
        while True:
            try:
                return self.proc.wait(timeout=min(max(0.0, deadline - now()), TICK_S)), False
            except subprocess.TimeoutExpired:
                if now() >= deadline:
                    self.kill()
                    return None, True

    def stderr(self, max_bytes: int = 1 << 16) -> str:
        return bytes(self._err[:max_bytes]).decode(errors="replace")

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
            if self._err_thread is not None:
                self._err_thread.join(timeout=2)
            self.proc.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)


def run_python(code: str, stdin: bytes = b"", limits: Limits = Limits(), max_output: int = 1 << 20,
               allow_unsafe: bool = False) -> Result:
    """Run `code` as __main__ in a sandbox, feeding it `stdin`; stdout/stderr come back capped at max_output."""
    with memory_reserved(1, limits), Sandbox(limits, allow_unsafe) as sb:
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
        rc, timed_out = sb.wait(limits.wall_s - (now() - sb._started))
        sb.kill()  # whatever it left behind in its group
        reader.join(timeout=2)
        sb._err_thread.join(timeout=2)
        wall = now() - sb._started
        return Result(rc, timed_out, out.decode(errors="replace"), sb.stderr(max_output), round(wall, 3))


_MECHANISM: str | None = None


# what the code runner imports (rsft/code_runner.py and its PRELUDE): a sandbox that cannot is a broken grader
PROBE = ("import builtins, gc, json, os, sys, math, heapq, bisect, itertools, functools, operator, collections, "
         "string, typing, decimal, fractions, random, re\nprint('ok', flush=True)")


def mechanism() -> str:
    """What contains model code on this machine, e.g. "mountns+netns+uid+landlock7+seccomp"; measured once per
    process by starting a sandbox that imports what the code runner needs (about 0.1 s). Raises UserError when
    nothing contains it and there is no opt-in, or when one starts but cannot run the runner (every code answer
    would fail: evaluate.py asks before any model loads)."""
    from rsft.errors import UserError

    global _MECHANISM
    if _MECHANISM is None:
        with Sandbox(Limits(wall_s=STARTUP_S)) as sb:
            sb.start(PROBE)
            if sb.recv_line(STARTUP_S) != b"ok":
                sb.wait(1)
                last = (sb.stderr().strip().splitlines() or ["no output"])[-1]
                raise UserError(f"sandbox: it starts but cannot import what the code runner needs ({last}), so "
                                f"every code answer would grade 0; drop the code tasks, or report this with the "
                                f"output of: python -c 'from rsft.sandbox import mechanism; mechanism()'")
            _MECHANISM = describe_layers(sb.layers)
    return _MECHANISM


def describe_layers(layers: list[str]) -> str:
    """The `sandbox: ...` string of a run: its kernel layers, with " (unsafe opt-in)" when none is a boundary."""
    kernel = [x for x in layers if x not in ("limits", "audithook", "tmpfs")]
    if any(x.startswith(FS_BOUNDARIES) for x in kernel):
        return "+".join(kernel)
    return f"{'+'.join(kernel) or 'none'} (unsafe opt-in)"


def refusal(layers: list[str], allow_unsafe: bool) -> str | None:
    """Why a sandbox with these layers may not run model code (None: it may)."""
    if any(x.startswith(FS_BOUNDARIES) for x in layers) or allow_unsafe:
        return None
    return (f"sandbox: no kernel boundary for model-written code on this machine (it got: "
            f"{'+'.join(layers) or 'nothing'}); run as root, allow unprivileged user namespaces, use a kernel "
            f"with Landlock (Linux >= 5.13), or set {UNSAFE_ENV}=1 to run it unconfined")


def _read_all(fd: int, timeout_s: float) -> bytes:
    import selectors

    data, deadline = bytearray(), now() + timeout_s
    with os.fdopen(fd, "rb", buffering=0) as f, selectors.DefaultSelector() as sel:
        sel.register(f, selectors.EVENT_READ)
        while True:
            left = deadline - now()
            if not sel.select(min(max(left, 0.0), TICK_S)):
                if left <= 0:
                    break
                continue
            chunk = f.read(1 << 16)
            if not chunk:
                break
            data += chunk
    return bytes(data)


def _tree_bytes(top: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def _fresh_uid() -> int:
    """A uid no account and no other live sandbox uses (taken only when the evaluator is root), inside the uid
    range this (possibly user-namespaced) container maps; 65534 (nobody) where the range is too small."""
    import secrets

    try:
        ranges = [tuple(map(int, line.split())) for line in open("/proc/self/uid_map")]
    except OSError:
        ranges = [(0, 0, 1 << 32)]
    inside, _, count = max(ranges, key=lambda r: r[2])
    if count < 1 << 21:
        return 65534
    return inside + (1 << 20) + secrets.randbelow(min(count - (1 << 20) - 2, 1 << 30))


def _read_roots() -> list[str]:
    """Every path sandboxed code may read (besides its own work and inputs folders and four devices)."""
    return _view()[0]


@functools.lru_cache(maxsize=1)
def _view() -> tuple[list[str], list[str], list[str]]:
    """(read roots, folders split, hidden folders inside them): what sandboxed code may read: the standard library,
    the shared libraries its modules load, a few system files.

    Nothing else of the evaluator's: not site-packages (HumanEval's reference solutions ship inside it, as any
    installed benchmark's data would), and never the other entries of sys.path, which hold the calling script's
    folder, the working directory (evaluate.py's worker runs in the checkout, beside data/ and runs/) and PYTHONPATH.
    Where a site-packages folder lies inside an allowed folder (the standard library's own), that folder is
    replaced by its entries less the hidden one, recursively, so one list serves the mounts, Landlock and the hook;
    Landlock lets the folders so split be listed (import lists the standard library's folder), which shows the names
    beneath them, site-packages' included, never their contents. The mount view binds a split folder whole and
    covers its hidden folders with an empty one (one mount instead of one per entry).
    """
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    version = f"{sys.version_info.major}{sys.version_info.minor}"
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    roots = {paths["stdlib"], paths["platstdlib"], os.path.join(paths["platstdlib"], "lib-dynload"),
             os.path.join(os.path.dirname(paths["stdlib"]), f"python{version}.zip"),
             *(os.path.join(libdir, sysconfig.get_config_var(v) or "-") for v in ("LDLIBRARY", "INSTSONAME")),
             *(f"{d}/{multiarch}" for d in ("/usr/lib", "/lib") if multiarch), "/usr/lib64", "/lib64",
             "/usr/share/zoneinfo", "/etc/localtime", "/etc/ld.so.cache"}
    roots = {os.path.realpath(r) for r in roots if os.path.exists(r)}
    roots |= {link for link in ("/lib", "/lib64", "/etc/localtime") if os.path.islink(link)}  # found by name
    hidden = {paths["purelib"], paths["platlib"], site.getusersitepackages(), *site.getsitepackages(),
              *(p or "." for p in sys.path)} - {paths["stdlib"], paths["platstdlib"]}
    hidden = {os.path.realpath(h) for h in hidden if not h.endswith((".zip", "lib-dynload"))}
    split: list[str] = []
    allowed = sorted(_without(sorted(roots), hidden, split))
    return allowed, sorted(split), sorted(h for h in hidden if any(h.startswith(d + "/") for d in split))


def _without(roots: list[str], hidden: set[str], split: list[str]) -> list[str]:
    """`roots` with every path in `hidden` (and whatever leads into one) cut out: a root that holds a hidden path
    is replaced by its entries, recursively."""
    out = []
    for root in roots:
        inside = {h for h in hidden if h == root or h.startswith(root.rstrip("/") + "/")}
        if os.path.islink(root) and os.path.realpath(root) in hidden:
            continue
        if not inside:
            out.append(root)
        elif root not in inside and os.path.isdir(root) and not os.path.islink(root):
            split.append(root)
            out += _without([os.path.join(root, name) for name in sorted(os.listdir(root))], inside, split)
    return out


# ------------------------------------------------------------------------------------------------ inside
# Everything below runs in the sandboxed interpreter, before the untrusted script (standard library + ctypes).

_NO_PROCESSES = {"os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile",
                 "subprocess.Popen", "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit",
                 "socket.__new__", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "sys.remote_exec"}
_NO_IMPORT = {"_posixsubprocess", "_ctypes", "ctypes", "_cffi_backend", "cffi", "_xxsubinterpreters", "pty"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

# linux/mount.h, linux/sched.h
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWNET = (
    0x20000, 0x04000000, 0x08000000, 0x10000000, 0x40000000)
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _sys(libc, name: str, *args) -> int:
    """A variadic libc call (syscall, prctl) with every integer passed as a full unsigned long."""
    import ctypes

    return getattr(libc, name)(*(ctypes.c_ulong(a) if isinstance(a, int) else a for a in args))


def _check(ret: int, what: str) -> int:
    import ctypes

    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _audit_hook(work: str, read_roots: list[str]):
    me = os.getpid()
    readable = tuple(read_roots) + (work, "/dev/", f"/proc/{me}")

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
            if path is not None and not under(path, (work, "/dev/null") if writing else readable):
                raise PermissionError(f"sandbox: may not {'write' if writing else 'read'} {path!r}")
        elif event in _NO_PROCESSES:
            if event in ("os.kill", "os.killpg") and args and args[0] in (0, me):
                return  # signalling itself is harmless
            raise PermissionError(f"sandbox: {event} is not allowed")
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


def _mount_view(config: dict, as_root: bool) -> None:
    """A private mount namespace whose root holds only what the script may see (bubblewrap's recipe)."""
    import ctypes

    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | (0 if as_root else CLONE_NEWUSER)
    _check(libc.unshare(flags), "unshare")
    if not as_root:  # map our own uid/gid; we hold every capability inside the new user namespace until capset
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)

    def mount(src, dst, fstype, mflags, data=None):
        _check(libc.mount(src and os.fsencode(src), os.fsencode(dst), fstype and fstype.encode(),
                          ctypes.c_ulong(mflags), data and data.encode()), f"mount {dst}")

    def ro_flags(path):  # a bind remount must keep the source's locked flags (nosuid, noexec, atime)
        f = os.statvfs(path).f_flag
        return (MS_NOSUID | MS_NODEV | MS_RDONLY | (MS_NOEXEC if f & os.ST_NOEXEC else 0)
                | (MS_NOATIME if f & os.ST_NOATIME else 0) | (MS_NODIRATIME if f & os.ST_NODIRATIME else 0)
                | (MS_RELATIME if f & os.ST_RELATIME else 0))

    new = config["newroot"]
    os.makedirs(new, exist_ok=True)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    seeds = {e.name: Path(e.path).read_bytes() for e in os.scandir(config["work"]) if e.is_file()}
    binds = []
    for path in _outermost(config["read_roots"] + config["list_dirs"] + [config["inputs"]]):
        target = new + path
        if os.path.islink(path):  # /lib -> usr/lib on merged-/usr systems: the link, its target is bound too
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
            continue
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
        mount(path, target, None, MS_BIND | MS_REC)
        binds.append((path, target))
    for path, target in binds:
        mount(None, target, None, MS_REMOUNT | MS_BIND | ro_flags(path))
    for path in config["masked"]:  # site-packages inside the standard library's folder: an empty folder instead
        if os.path.isdir(new + path):
            mount("tmpfs", new + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")
    for dev in DEVICES:
        os.makedirs(new + "/dev", exist_ok=True)
        open(new + dev, "w").close()
        mount(dev, new + dev, None, MS_BIND)
    work = new + config["work"]
    os.makedirs(work, exist_ok=True)
    owner = config["uid"] if as_root else uid
    mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={config['limits']['disk_bytes']},mode=0700,uid={owner},gid={owner if as_root else gid}")
    for name, data in seeds.items():
        with open(os.path.join(work, name), "wb") as f:
            f.write(data)
        if as_root:
            os.chown(os.path.join(work, name), owner, owner)
    mount(None, new, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(new)
    _check(_sys(libc, "syscall", 155 if _ARCH == "x86_64" else 41, b".", b"."), "pivot_root")  # pivot_root(".", ".")
    _check(libc.umount2(b".", 2), "umount old root")  # MNT_DETACH: the evaluator's tree is gone from its view
    os.chdir(config["work"])


def _outermost(paths: list[str]) -> list[str]:
    """Drop paths that lie inside another in the list (their parent's bind already shows them). A symlink in the
    list (/lib -> usr/lib) is shown as the link alone: what it may lead to is in the list by its real path."""
    real = sorted({p for p in paths if os.path.lexists(p)})
    keep = []
    for p in real:
        if not any(p.startswith(k.rstrip("/") + "/") for k in keep if not os.path.islink(k)):
            keep.append(p)
    return keep


def _drop_caps() -> None:
    """No capabilities at all (after the user-namespace mounts, which needed them)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    _check(_libc().capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")


def _landlock(config: dict) -> int:
    """Restrict the filesystem (and from ABI 4 TCP, from ABI 6 signals) to the sandbox's view; returns the ABI."""
    import ctypes

    libc = _libc()
    abi = _sys(libc, "syscall", 444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        raise OSError("landlock is not available")
    fs_all = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (
        1 << 15 if abi >= 5 else 0)

    class Attr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    attr = Attr(fs_all, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)  # TCP bind+connect; unix+signal
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _check(_sys(libc, "syscall", 444, ctypes.byref(attr), size, 0), "landlock_create_ruleset")
    EXEC, WRITE, READ, READ_DIR, TRUNCATE = 1, 2, 4, 8, 1 << 14
    read_dir = EXEC | READ | READ_DIR
    work = fs_all & ~(1 << 6 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 15)  # no char/block devices, sockets, fifos
    rules = [(p, read_dir) for p in config["read_roots"] + [config["inputs"]]]
    rules += [(p, READ_DIR) for p in config["list_dirs"]]
    rules += [(config["work"], work)] + [(d, READ | WRITE | (TRUNCATE if abi >= 3 else 0)) for d in DEVICES]
    for path, allowed in rules:
        if os.path.islink(path):
            continue  # /lib -> usr/lib: a rule would grant the whole target; what it may lead to has its own rule
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        if not os.path.isdir(path):
            allowed &= EXEC | READ | WRITE | TRUNCATE | (1 << 15)  # rights a file can hold
        try:
            _check(_sys(libc, "syscall", 445, ruleset, 1, ctypes.byref(PathBeneath(allowed & fs_all, fd)), 0),
                   f"landlock_add_rule {path}")
        finally:
            os.close(fd)
    _check(_sys(libc, "syscall", 446, ruleset, 0), "landlock_restrict_self")
    os.close(ruleset)
    return abi


_ARCH = os.uname().machine
# x86_64 syscall numbers refused outright (EPERM): sockets, other processes' memory, namespaces and mounts,
# processes and exec, kernel objects that have been escape vectors (bpf, io_uring, keys, userfaultfd, perf), modules,
# and memory its address-space cap does not count: memfd_create, memfd_secret, SysV shared memory and message queues,
# POSIX message queues (a memfd filled and unmapped held 7 GB past the 4 GiB cap)
_DENY_X86_64 = (41, 53, 101, 310, 311, 165, 166, 155, 161, 272, 308, 57, 58, 59, 322, 200, 434, 424, 438, 321, 298,
                250, 248, 249, 323, 425, 426, 427, 246, 320, 175, 313, 176, 169, 167, 168, 303, 304, 428, 429, 430,
                431, 432, 433, 442, 163, 179, 172, 173, 319, 447, 29, 68, 240)
_SELF_ONLY_X86_64 = (62, 234, 129, 297)  # kill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo: first argument = us
_CLONE, _CLONE3, _IOCTL, _TIOCSTI = 56, 435, 16, 0x5412
_CLONE_THREAD = 0x10000
_CLONE_NS = 0x7E020000  # every CLONE_NEW* flag


def _seccomp() -> None:
    """no_new_privs and a BPF filter (x86_64 only: syscall numbers are per architecture)."""
    import ctypes

    if _ARCH != "x86_64":
        raise OSError(f"no seccomp table for {_ARCH}")
    LD, JEQ, JSET, JGE, RET = 0x20, 0x15, 0x45, 0x35, 0x06
    ALLOW, EPERM, ENOSYS, KILL = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38, 0x80000000
    me = os.getpid()
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, 0xC000003E), (RET, 0, 0, KILL),  # AUDIT_ARCH_X86_64, else killed
            (LD, 0, 0, 0), (JGE, 0, 1, 0x40000000), (RET, 0, 0, EPERM)]  # no x32 syscalls
    for nr in _DENY_X86_64:
        prog += [(JEQ, 0, 1, nr), (RET, 0, 0, EPERM)]
    prog += [(JEQ, 0, 1, _CLONE3), (RET, 0, 0, ENOSYS)]  # flags out of reach: glibc falls back to clone
    prog += [(JEQ, 0, 5, _CLONE), (LD, 0, 0, 16), (JSET, 2, 0, _CLONE_NS), (JSET, 0, 1, _CLONE_THREAD),
             (RET, 0, 0, ALLOW), (RET, 0, 0, EPERM)]  # threads only
    prog += [(JEQ, 0, 4, _IOCTL), (LD, 0, 0, 24), (JEQ, 0, 1, _TIOCSTI), (RET, 0, 0, EPERM), (RET, 0, 0, ALLOW)]
    for nr in _SELF_ONLY_X86_64:
        prog += [(JEQ, 0, 4, nr), (LD, 0, 0, 16), (JEQ, 0, 1, me), (RET, 0, 0, ALLOW), (RET, 0, 0, EPERM)]
    prog += [(RET, 0, 0, ALLOW)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    libc = _libc()
    _check(_sys(libc, "prctl", 38, 1, 0, 0, 0), "no_new_privs")  # PR_SET_NO_NEW_PRIVS
    _check(_sys(libc, "prctl", 22, 2, ctypes.byref(Prog(len(prog), filters)), 0, 0), "seccomp")  # SECCOMP_MODE_FILTER


def _contain(config: dict) -> list[str]:
    """Every layer this machine allows, in order; returns the names of those that engaged."""
    import resource

    layers = []
    as_root = os.geteuid() == 0
    uid = config["uid"] if as_root else os.getuid()
    ntasks = 0 if as_root else _tasks_of_uid(uid)  # a fresh uid runs nothing yet
    if sys.platform.startswith("linux"):
        try:
            _mount_view(config, as_root)
            layers += ["mountns", "netns", "tmpfs"] + ([] if as_root else ["userns"])
        except (OSError, ValueError):
            os.chdir(config["work"])
    if as_root and ("mountns" in layers or _world_traversable(config["read_roots"])):
        if "mountns" not in layers:  # its work directory on disk, reachable by the new uid
            os.chmod(os.path.dirname(config["work"]), 0o711)
            os.chown(config["work"], uid, uid)
            for e in os.scandir(config["work"]):
                os.chown(e.path, uid, uid)
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # every capability goes with uid 0
            layers.append("uid")
        except OSError:
            pass
    elif "userns" in layers:
        try:
            _drop_caps()
        except OSError:
            pass
    if sys.platform.startswith("linux"):
        try:
            _check(_sys(_libc(), "prctl", 38, 1, 0, 0, 0), "no_new_privs")
            layers.append(f"landlock{_landlock(config)}")
        except (OSError, AttributeError):
            pass
        try:
            _seccomp()
            layers.append("seccomp")
        except (OSError, AttributeError):
            pass
    lim = config["limits"]
    for what, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_AS, lim["memory_bytes"]),
                        (resource.RLIMIT_FSIZE, lim["file_bytes"]), (resource.RLIMIT_NOFILE, lim["open_files"]),
                        (resource.RLIMIT_NPROC, ntasks + lim["tasks"])):
        resource.setrlimit(what, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 1))
    return layers + ["limits"]


def _world_traversable(paths: list[str]) -> bool:
    """Whether an unprivileged uid can reach every path (Python under /root is not: mode 0700)."""
    import stat

    for p in paths:
        parts = Path(p).parents
        if any(os.stat(d).st_mode & stat.S_IXOTH == 0 for d in parts if d.exists()):
            return False
    return True


def _boot(config: dict) -> None:
    """Runs in the sandboxed interpreter, before the untrusted script: layers, report, then the script."""
    import runpy
    import site

    site.setquit(), site.setcopyright(), site.sethelper()  # exit(), quit(), help() without site's path (-S)
    layers = _contain(config)
    for name in ("ctypes", "ctypes._endian", "_ctypes"):
        sys.modules.pop(name, None)  # the script's own `import ctypes` meets the audit hook
    sys.addaudithook(_audit_hook(config["work"], config["read_roots"] + [config["inputs"]]))
    layers.append("audithook")
    report = {"layers": layers}
    if (why := refusal(layers, config["allow_unsafe"])) is not None:
        report["refused"] = why
    os.write(config["status_fd"], json.dumps(report).encode())
    os.close(config["status_fd"])
    if "refused" in report:
        os._exit(3)
    sys.argv = ["main.py"]
    runpy.run_path(os.path.join(config["work"], "main.py"), run_name="__main__")


if __name__ == "__main__":
    _boot(json.loads(sys.argv[1]))
