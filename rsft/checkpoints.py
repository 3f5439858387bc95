"""A run's checkpoints: saving one, listing them, resuming from the newest, clearing what a killed save left.

    RUN/checkpoints/stepNNNNN/   weights (the adapter, or every weight), tokenizer, meta.json, README.md (the card)
                                 the newest save only: trainer_state.pt (optimizer, scheduler, loss scaler) and
                                 trainer_state_rankR.pt per process (its RNG; under FSDP its optimizer shard)
    RUN/resume/                  the same, written on Ctrl-C / SIGTERM between scheduled checkpoints

Saving: every file goes into NAME.tmp, which is renamed to NAME when complete (a directory rename is atomic), so
only renamed folders are checkpoints; a leftover of a killed save (.tmp, .old) is removed, and named, on the next
run. A full disk or a read-only folder is one line naming it, the save before intact. Rank 0 writes the weights;
every rank writes its own state file; the weights of `finetune: full` under FSDP are gathered into one state dict.

Resuming: from the newest save only (training on from an older one would overwrite newer saves), under the number
of processes that wrote it. A newest save without its training state (Drive sync lag, a deleted file) is refused,
never silently restarted over; `train.py --resume-weights-only` continues from its weights with a fresh optimizer,
recorded in run.json. The loop that saves and resumes is rsft/trainer.py; the folder names are rsft/rundir.py's.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rsft.errors import UserError
from rsft.rundir import (CHECKPOINTS, META_FILE, RANK_STATE, RESUME_DIR, STATE_FILE, checkpoint_dir, checkpoint_dirs,
                         disk_full, write_failed)


@dataclass
class Progress:
    """How far the loop is: counted by rsft/trainer.py, recorded in each save's meta.json, read back on resume."""
    step: int = 0
    tokens_seen: int = 0
    wall_time_s: float = 0.0
    loss: float | None = None
    learning_rate: float = 0.0
    skipped_steps: int = 0  # steps skipped for a non-finite gradient norm (train.nonfinite_grad_norm: skip)
    skips_in_a_row: int = 0

    @classmethod
    def from_meta(cls, meta: dict) -> Progress:
        return cls(meta["step"], meta["tokens_seen"], meta["wall_time_s"], meta["loss"], meta["learning_rate"],
                   meta.get("skipped_steps", 0), meta.get("skips_in_a_row", 0))


@dataclass
class TrainingState:
    """What continuing exactly needs besides the weights and the step (the data position is a function of it)."""
    optimizer: Any
    scheduler: Any
    scaler: Any  # torch.amp.GradScaler for a float16 base, else None
    sharded: bool  # FSDP: each process holds, and saves in its rank file, its own optimizer shard


# ------------------------------------------------------------------------------------------------ listing


def incomplete_saves(run_dir: Path) -> list[Path]:
    """Folders a killed save left behind (stepNNNNN.tmp, resume.tmp, *.old): never checkpoints."""
    ckpts = run_dir / CHECKPOINTS
    found = [p for p in ckpts.iterdir() if p.name.endswith((".tmp", ".old"))] if ckpts.exists() else []
    return sorted(found + [p for p in (run_dir / f"{RESUME_DIR}.tmp", run_dir / f"{RESUME_DIR}.old") if p.exists()])


def remove_incomplete_saves(run_dir: Path) -> None:
    """Remove, and name, what a killed save left behind (on the main process, before anything is read)."""
    left = incomplete_saves(run_dir)
    for leftover in left:
        shutil.rmtree(leftover)
    if left:
        print(f"removed {len(left)} incomplete save(s) of an interrupted run: "
              f"{', '.join(str(x.relative_to(run_dir)) for x in left)}")


def read_meta(ckpt: Path) -> dict:
    try:
        return json.loads((ckpt / META_FILE).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{ckpt / META_FILE} cannot be read ({e}); move {ckpt} out of the run folder") from None


def find_resume_point(run_dir: Path) -> Path | None:
    """The newest saved state to continue from (a scheduled checkpoint or the interrupt state), if any."""
    candidates = [p for p in checkpoint_dirs(run_dir) + [run_dir / RESUME_DIR] if (p / STATE_FILE).exists()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: read_meta(p)["step"])


def newest_save(run_dir: Path) -> Path | None:
    """The save with the highest step (a checkpoint or the interrupt state), whether or not it kept its state."""
    saves = checkpoint_dirs(run_dir) + [p for p in [run_dir / RESUME_DIR] if (p / META_FILE).exists()]
    return max(saves, key=lambda p: read_meta(p)["step"], default=None)


def missing_state(save: Path, meta: dict) -> list[str]:
    """The training-state files a save needs to continue exactly and lacks (Drive sync lag, a deleted file)."""
    need = [STATE_FILE] + [RANK_STATE.format(r) for r in range(meta.get("world_size", 1))]
    return [f for f in need if not (save / f).exists()]


def no_restart_error(save: Path, meta: dict, missing: list[str]) -> UserError:
    """A run folder is never silently trained again from step 0 over its checkpoints and metrics.jsonl."""
    return UserError(
        f"{save} (step {meta['step']}, the newest save of this run) lacks {', '.join(missing)} (optimizer, scheduler, "
        "RNG), so the run cannot continue exactly, and it is not restarted over its checkpoints. Either continue from "
        "its weights with a fresh optimizer: rerun with --resume-weights-only (recorded in run.json); or start over: "
        "set train.output_dir to a new folder")


# ------------------------------------------------------------------------------------------------ resuming


@dataclass
class Resume:
    """Where a run starts: from nothing, from its newest save, or at the end of a finished run."""
    progress: Progress
    save: Path | None = None  # the save to load (None: a fresh run, or a finished one: nothing to load)
    meta: dict | None = None
    missing: list[str] | None = None  # training state the save lacks: its weights only (--resume-weights-only)


def find_resume(run_dir: Path, total_steps: int, world_size: int, weights_only: bool, say=print) -> Resume:
    """The newest save and how to continue from it, or a one-line refusal (another number of processes; a newest
    save without its training state, unless `weights_only`: the user's --resume-weights-only)."""
    save = newest_save(run_dir)  # never an older state: training on from it would overwrite newer saves
    meta = read_meta(save) if save is not None else None
    if meta is None or meta["step"] >= total_steps:  # nothing saved, or a finished run: nothing to load
        if weights_only:
            say("note: --resume-weights-only is not needed: no save to continue from")
        return Resume(Progress.from_meta(meta) if meta else Progress())
    if meta.get("world_size", 1) != world_size:
        raise UserError(f"{save} was written by {meta.get('world_size', 1)} processes and this run has "
                        f"{world_size}; relaunch with {meta.get('world_size', 1)} to resume it")
    missing = missing_state(save, meta)
    if missing and not weights_only:
        raise no_restart_error(save, meta, missing)
    if weights_only and not missing:
        say(f"note: --resume-weights-only is not needed: {save} holds its training state; continuing exactly")
    return Resume(Progress.from_meta(meta), save, meta, missing)


def load_weights(model, ckpt: Path) -> None:
    """A save's weights into the model, before accelerate wraps (and FSDP shards) it."""
    import peft
    from safetensors.torch import load_file

    if isinstance(model, peft.PeftModel):
        peft.set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
        return
    for f in sorted(ckpt.glob("*.safetensors")):
        model.load_state_dict(load_file(f), strict=False)


def restore(resume: Resume, run_dir: Path, acc, state: TrainingState, total_steps: int) -> None:
    """Bring the optimizer, scheduler, loss scaler and RNG to the save's step: exactly from its training state, or
    (its state missing, --resume-weights-only) with a fresh optimizer, recorded in run.json."""
    ckpt, meta = resume.save, resume.meta
    if ckpt is None:
        return
    if resume.missing:
        _fresh_optimizer(resume, run_dir, acc, state, total_steps)
        return
    shared = _torch_load(ckpt / STATE_FILE)
    mine = _torch_load(ckpt / RANK_STATE.format(acc.process_index))
    state.optimizer.load_state_dict(mine["optimizer"] if state.sharded else shared["optimizer"])
    state.scheduler.load_state_dict(shared["scheduler"])
    if state.scaler is not None and "scaler" in shared:
        state.scaler.load_state_dict(shared["scaler"])
    _set_rng_state(mine["rng"])
    acc.print(f"resuming from {ckpt} (step {meta['step']} of {total_steps})")


def _fresh_optimizer(resume: Resume, run_dir: Path, acc, state: TrainingState, total_steps: int) -> None:
    """Continue at the save's step from its weights (loaded already): the optimizer starts empty, the schedule is
    moved to the step, the RNG keeps train.seed's start. Recorded in run.json: the run is no longer exact."""
    import warnings

    from rsft.rundir import read_json, write_json_atomic

    ckpt, meta, missing = resume.save, resume.meta, resume.missing
    with warnings.catch_warnings():  # torch warns of a scheduler stepped before any optimizer step
        warnings.simplefilter("ignore")
        for _ in range(meta["step"]):
            state.scheduler.step()
    if acc.is_main_process:
        record = run_dir / "run.json"
        run = read_json(record) or {}
        run.setdefault("weights_only_resumes", []).append(
            {"step": meta["step"], "from": str(ckpt.relative_to(run_dir)), "missing": missing,
             "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        write_json_atomic(record, run)
    acc.print(f"resuming the weights of {ckpt} (step {meta['step']} of {total_steps}) with a fresh optimizer "
              f"(--resume-weights-only; {', '.join(missing)} missing); recorded in run.json")


def _torch_load(path: Path):
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UserError(f"{path} is missing; the run cannot resume exactly from {path.parent}") from None
    except Exception as e:  # a damaged file: torch raises EOFError, RuntimeError, UnpicklingError, ...
        raise UserError(f"{path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                        "the run cannot resume exactly from it: train into a new train.output_dir") from None


def _rng_state() -> dict:
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------------ saving


def save(run_dir: Path, acc, model, tokenizer, state: TrainingState, meta: dict) -> Path:
    """A checkpoint folder (meta["scheduled"]) or the interrupt state: weights, tokenizer, meta.json, and the resume
    state of every rank. A full disk (or a read-only folder) is one line naming it; the save before is left intact."""
    step, scheduled = meta["step"], meta["scheduled"]
    out = checkpoint_dir(run_dir, step) if scheduled else run_dir / RESUME_DIR
    if scheduled and out.exists():  # cannot happen after a resume from the newest save; never replace one
        raise UserError(f"{out} exists already and a checkpoint is never overwritten; train into a new "
                        "train.output_dir")
    tmp = out.with_name(out.name + ".tmp")
    try:
        _write_save(tmp, acc, model, tokenizer, state, meta)
    except Exception as e:
        if not (isinstance(e, OSError) or disk_full(e)):
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # the half-written save holds the space the disk lacks
        kept = checkpoint_dirs(run_dir)
        raise UserError(f"{write_failed(tmp, e)}; step {step} was not saved"
                        + (f", {kept[-1]} is intact" if kept else "")) from None
    acc.wait_for_everyone()
    if acc.is_main_process:
        _publish(tmp, out)
        # Only the newest state is needed to resume; older checkpoints keep their weights only.
        for old in checkpoint_dirs(run_dir) + [run_dir / RESUME_DIR]:
            if old != out:
                for f in sorted(old.glob("trainer_state_rank*.pt")) + [old / STATE_FILE]:
                    f.unlink(missing_ok=True)
        if scheduled:
            shutil.rmtree(_set_aside(run_dir / RESUME_DIR), ignore_errors=True)
    acc.wait_for_everyone()
    return out


def _write_save(tmp: Path, acc, model, tokenizer, state: TrainingState, meta: dict) -> None:
    """Everything of one save into `tmp` (no checkpoint until save() renames it)."""
    import torch

    main = acc.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    unwrapped = acc.unwrap_model(model)
    full = None if hasattr(unwrapped, "peft_config") else acc.get_state_dict(model)  # FSDP: gathered
    rank_state = {"rng": _rng_state()}
    if state.sharded:
        rank_state["optimizer"] = state.optimizer.state_dict()
    torch.save(rank_state, tmp / RANK_STATE.format(acc.process_index))
    if not main:
        return
    if full is None:  # the adapter only; no Hub look-up of the base's vocabulary
        unwrapped.save_pretrained(tmp, save_embedding_layers=False)
    else:  # full fine-tuning: every weight, from one full state dict
        unwrapped.save_pretrained(tmp, state_dict=full)
    tokenizer.save_pretrained(tmp)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    if meta["scheduled"]:  # the model card: base, data, step, the paper setting (rsft/hub.py)
        from rsft.hub import write_model_card

        write_model_card(tmp)
    shared = {"scheduler": state.scheduler.state_dict()}
    if state.scaler is not None:
        shared["scaler"] = state.scaler.state_dict()
    if not state.sharded:
        shared["optimizer"] = state.optimizer.state_dict()
    torch.save(shared, tmp / STATE_FILE)


def _set_aside(path: Path) -> Path:
    """Rename a folder to NAME.old (a name incomplete_saves() knows), so that no kill leaves half of it in place."""
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    return old


def _publish(tmp: Path, out: Path) -> None:
    """Make a finished save visible under its name in one rename (a directory rename is atomic)."""
    old = _set_aside(out)  # only resume/ is written twice
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
