"""Child processes tied to their parent's life: a worker or judge that evaluate.py started never outlives it.

evaluate.py sets the tie in each child between fork and exec (Popen's preexec_fn; it survives the exec), and the
worker sets it again as its first act (rsft/eval_worker.py), for when it is started by other means.
"""
from __future__ import annotations

import ctypes
import os
import signal


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (kill -9 included), so no worker is left behind. A parent
    already gone when this runs ends the process at once. Elsewhere (no prctl) it does nothing."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)
    except (OSError, AttributeError):
        pass
