"""The run folder's layout, in one place, and the one way its files are written (whole, then renamed).

    RUN/
      .train.lock                       held by the train.py writing the run (a second one is refused)
      checkpoints/stepNNNNN/            a checkpoint (meta.json inside); stepNNNNN.tmp while it is being written
                  trainer_state*.pt     its training state (optimizer, scheduler, RNG): the newest save only
      resume/                           a save made on Ctrl-C / SIGTERM between checkpoints (the same files)
      eval/PRESET/stepNNNNN/TASK.json   a finished (checkpoint, task) pair
                           TASK.gen.json        a judge-scored task, generated, waiting for its judges
                           TASK.samples.jsonl   every response with its extracted answer and score
                           TASK.judgments.jsonl judgments, appended one per line as they are made
                           lm_eval/results_TASK.json, lm_eval/samples_TASK.jsonl   lm-eval's own files for the task
                           skipped.json         tasks not evaluated for this model, with the reason
                           .worker.lock         held by the evaluation writing this step
      eval/PRESET-limitN/...            the same for `evaluate.py --limit N` (a smoke test of its own)
    --model runs write the same TASK files into --out.

Step numbers are zero-padded to 5 digits so folders sort (step00010 ... step00640).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import sys
from pathlib import Path

from rsft.errors import UserError

CHECKPOINTS = "checkpoints"
TRAIN_LOCK = ".train.lock"
WORKER_LOCK = ".worker.lock"
META_FILE = "meta.json"
STATE_FILE = "trainer_state.pt"  # optimizer, scheduler, loss scaler: kept in the newest save only
RANK_STATE = "trainer_state_rank{}.pt"  # each process's RNG (and FSDP optimizer shard): newest save only
RESUME_DIR = "resume"  # written on Ctrl-C / SIGTERM between scheduled checkpoints
_CHECKPOINT_NAME = re.compile(r"step\d{5,}")  # a complete checkpoint: renamed into place, so no .tmp suffix


def step_name(step: int) -> str:
    return f"step{step:05d}"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / step_name(step)


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """A run's complete checkpoints, in step order: renamed into place (no `.tmp` leftover of a kill) with meta.json."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name) and (p / META_FILE).exists())


def run_of(ckpt: Path) -> Path:
    """The run folder a checkpoint folder (RUN/checkpoints/stepNNNNN) belongs to."""
    return Path(ckpt).parent.parent


def is_training_state(name: str) -> bool:
    """trainer_state.pt or a process's trainer_state_rankR.pt: what resuming needs and sharing never does."""
    return name.startswith("trainer_state") and name.endswith(".pt")


def eval_dir(run_dir: Path, preset_name: str, step: int) -> Path:
    return Path(run_dir) / "eval" / preset_name / step_name(step)


_SMOKE_TEST = re.compile(r".+-limit\d+")  # eval/PRESET-limitN/: `evaluate.py --limit N`, not a checkpoint's score


def step_results(run_dir: Path, step: int) -> list[Path]:
    """One step's finished TASK.json files, every preset's, the --limit smoke tests' left out."""
    found = Path(run_dir).glob(f"eval/*/{step_name(step)}/*.json")
    return sorted(p for p in found if is_result(p) and not _SMOKE_TEST.fullmatch(p.parents[1].name))


def at_step(result: Path, step: int) -> Path:
    """The same preset's and task's TASK.json at another step (step 0: the base model's)."""
    return result.parents[1] / step_name(step) / result.name


EVAL_RESULTS_GLOB = "eval/*/step*/*.json"  # every TASK.json (and .gen.json, skipped.json: see is_result)


def result_path(out_dir: Path, task: str) -> Path:
    return Path(out_dir) / f"{task}.json"


def gen_path(out_dir: Path, task: str) -> Path:
    """A judge-scored task's phase-1 result; the judging phase writes TASK.json from it."""
    return Path(out_dir) / f"{task}.gen.json"


def samples_path(out_dir: Path, task: str) -> Path:
    return Path(out_dir) / f"{task}.samples.jsonl"


def judgments_path(out_dir: Path, task: str) -> Path:
    return Path(out_dir) / f"{task}.judgments.jsonl"


def lm_eval_paths(out_dir: Path, task: str) -> tuple[Path, Path]:
    """lm-eval's own results JSON and samples (doc, target, responses, metrics), as its CLI names them."""
    return Path(out_dir) / "lm_eval" / f"results_{task}.json", Path(out_dir) / "lm_eval" / f"samples_{task}.jsonl"


def skipped_path(out_dir: Path) -> Path:
    """{task: why it was not evaluated} for one model (data missing, a task that cannot load); the report lists it."""
    return Path(out_dir) / "skipped.json"


def is_result(path: Path) -> bool:
    """A TASK.json (not a .gen.json waiting for judges, not skipped.json)."""
    return not (path.name.endswith(".gen.json") or path.name == "skipped.json")


def samples_of(result: Path) -> Path:
    """TASK.samples.jsonl beside a TASK.json."""
    return result.with_name(result.stem + ".samples.jsonl")


# ------------------------------------------------------------------------------------------------ writing


def disk_full(e: BaseException) -> bool:
    """A full disk as torch ('unexpected pos', from its zip writer) and safetensors (StorageFull) word it."""
    return any(words in str(e) for words in ("unexpected pos", "No space left on device", "StorageFull"))


def write_failed(path: Path, e: BaseException) -> UserError:
    """One line for a write that failed on the machine's side (disk full, read-only, a file where a folder should
    be): which folder, and what to do. `e`: the OSError, or torch's 'unexpected pos' error of a full disk."""
    folder = Path(path).parent
    code = getattr(e, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or disk_full(e):
        why = f"the disk holding {folder} is full (or its quota is used up); free space there and rerun"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = f"{folder} is read-only; make it writable, or give another folder, and rerun"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        why = f"a file stands where the folder {folder} (or one above it) should be; move it away and rerun"
    else:
        why = f"{getattr(e, 'strerror', None) or e}; check {folder} and rerun"
    return UserError(f"cannot write {path}: {why}")


def write_text_atomic(path: Path, text: str) -> None:
    """Written whole beside it, then renamed: a killed process leaves the old file or the new one, never half. A
    failed write (disk full, read-only folder) leaves the old file and raises a one-line UserError naming it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):  # a half-written copy would hold the space the disk lacks
            tmp.unlink(missing_ok=True)
        raise write_failed(path, e) from None


def check_writable(folder: Path) -> None:
    """A one-line UserError now, before any model loads, when results cannot be written into `folder`."""
    probe = Path(folder) / ".write-check"
    write_text_atomic(probe, "")
    probe.unlink()


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict] | None:
    """Every line of a JSONL file written by this kit, or None when any line is unreadable (cut short)."""
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_json(path: Path) -> dict | None:
    """A JSON object written by this kit, or None when it is unreadable (cut short, empty, not an object)."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


# ------------------------------------------------------------------------------------------------ what is done


def generated(out_dir: Path, task: str, preset: dict | None = None) -> bool:
    """Nothing left to generate: finished, or generated and waiting for (or partly through) its judge.

    A result file that cannot be read (cut short by a kill, emptied) does not count: it is named and redone.
    With `preset`, a result made with other settings under the same preset name (the preset's definition changed
    since) is refused rather than skipped as finished or silently overwritten."""
    for path in (result_path(out_dir, task), gen_path(out_dir, task)):
        if not path.exists():
            continue
        done = read_json(path)
        samples = samples_path(out_dir, task)
        rows = read_jsonl(samples) if samples.exists() else None
        why = _unfinished(path, done, samples, rows)
        if why:
            print(f"warning: {why}; {task} is evaluated again", file=sys.stderr, flush=True)
            return False
        old = done.get("preset")
        if preset is not None and old is not None:
            # a setting added to presets after a result was made is absent from it, and read as unset (None)
            changed = [f"{k} {old.get(k)} -> {v}" for k, v in preset.items() if old.get(k) != v]
            changed += [f"{k} is gone from the preset" for k in sorted(set(old) - set(preset))]
            if changed:
                raise UserError(f"{path} was made with other settings of this preset ({', '.join(changed)}); move "
                                f"that folder away (or delete it) to evaluate again, or keep it and use another "
                                f"--preset")
        return True
    return False


def _unfinished(path: Path, done: dict | None, samples: Path, rows: list[dict] | None) -> str:
    """Why a written result does not count as finished ('' when it does): unreadable, without its value (null
    only while a judge-scored task waits for its judges), or its samples file missing, cut short or short of the
    n * k lines (questions times repeats) the result says were written."""
    if done is None or rows is None:
        return f"{path if done is None else samples} is missing or unreadable (cut short?)"
    if "value" not in done or (done["value"] is None and not done.get("judge")):
        return f"{path} has no value"
    n, k = done.get("n"), done.get("k")
    if isinstance(n, int) and isinstance(k, int) and len(rows) < n * k:
        return f"{samples} has {len(rows)} lines, fewer than the {n * k} (n {n} x k {k}) its result says"
    return ""


def record_skipped(out_dir: Path, skipped: dict[str, str], done: str | None = None) -> None:
    """Add {task: reason} to the model's skipped.json; `done`: a task that has now run is taken off."""
    path = skipped_path(out_dir)
    old = (read_json(path) or {}) if path.exists() else {}
    new = {k: v for k, v in {**old, **skipped}.items() if k != done}
    if new != old:
        write_json_atomic(path, new)


def lock_folder(folder: Path, lock_name: str, busy: str):
    """An exclusive lock on folder/lock_name, held while the returned file stays open (the OS drops it when the
    process dies, kill -9 included, so no stale lock is left); UserError(busy) when another process holds it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        f = (folder / lock_name).open("a+")
    except OSError as e:
        raise write_failed(folder / lock_name, e) from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise UserError(busy) from None
    return f
