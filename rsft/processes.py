"""evaluate.py's child processes: each model's worker and the judging run in a fresh process (run_one), stopped
with whatever they started (stop), and never outlive evaluate.py (die_with_parent: set in each child between fork
and exec, where it survives the exec, and again by the worker as its first act, for when it is started otherwise).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the folder holding the rsft package: `python -m rsft.X` finds it


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (kill -9 included), so no worker is left behind. A parent
    already gone when this runs ends the process at once. Elsewhere (no prctl) it does nothing."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)
    except (OSError, AttributeError):
        pass


def run_one(spec, module: str = "rsft.eval_worker") -> bool:
    """One model (or, with rsft.judges, the judging of several) in a fresh process. True when it succeeded.
    `spec`: a rsft.specs.WorkerSpec or JudgeSpec, written to a temporary file the child reads back.

    The child has a session of its own, so a terminal's Ctrl-C reaches evaluate.py alone, which stops the child
    (finished results are on disk, written whole) and re-raises the KeyboardInterrupt for its caller to name."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(spec.to_json())
    try:
        proc = subprocess.Popen([sys.executable, "-m", module, f.name], cwd=ROOT,
                                preexec_fn=die_with_parent if sys.platform == "linux" else None,
                                start_new_session=True)
        try:
            return proc.wait() == 0
        except KeyboardInterrupt:
            stop(proc)
            raise
    finally:
        os.unlink(f.name)


def stop(proc: subprocess.Popen) -> None:
    """End a child and whatever it started (its process group): SIGTERM, which ends Python without a traceback,
    then SIGKILL for anything left after 10 s. Another Ctrl-C or SIGTERM meanwhile waits for this."""
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        proc.wait()
    finally:
        for sig, old in held.items():
            signal.signal(sig, old)
