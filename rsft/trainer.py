"""The training loop: fixed data order, token-mean loss per micro-batch, scheduled checkpoints, exact resume.

Data position is a function of the step (fixed order, as the paper's `shuffle_train=False`): step s of epoch
e = s // steps_per_epoch reads rows [(s mod steps_per_epoch) * global_batch, ... + global_batch). So a resumed run
needs only the step, the weights, the optimizer, the scheduler and the RNG states to continue exactly.

Multi-GPU: run the same command under `accelerate launch --config_file configs/accelerate/ddp.yaml train.py ...`;
each process takes every world_size-th micro-batch of a step and accelerate syncs gradients on the last one.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsft.config import Recipe
from rsft.data import TrainSet, collate
from rsft.errors import UserError
from rsft.schedule import Plan

STATE_FILE = "trainer_state.pt"  # optimizer, scheduler, RNG: kept in the newest checkpoint only
META_FILE = "meta.json"
RESUME_DIR = "resume"  # written on Ctrl-C / SIGTERM between scheduled checkpoints


def checkpoint_name(step: int) -> str:
    return f"step{step:05d}"  # zero-padded so folders sort: step00010 ... step00640


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Scheduled checkpoints of a run, in step order."""
    ckpts = run_dir / "checkpoints"
    return sorted(p for p in ckpts.glob("step*") if (p / META_FILE).exists()) if ckpts.exists() else []


def find_resume_point(run_dir: Path) -> Path | None:
    """The newest saved state to continue from (a scheduled checkpoint or the interrupt state), if any."""
    candidates = [p for p in checkpoint_dirs(run_dir) + [run_dir / RESUME_DIR] if (p / STATE_FILE).exists()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: json.loads((p / META_FILE).read_text())["step"])


class _StopFlag:
    """Ctrl-C / SIGTERM ask the loop to save a resumable state after the current step; a second Ctrl-C aborts."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: saving a resumable state after this step (again to abort)")

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class Progress:
    step: int = 0
    tokens_seen: int = 0
    wall_time_s: float = 0.0
    loss: float = float("nan")
    learning_rate: float = 0.0


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


def _load_weights(model, ckpt: Path) -> None:
    import peft
    from safetensors.torch import load_file

    if isinstance(model, peft.PeftModel):
        peft.set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
        return
    for f in sorted(ckpt.glob("*.safetensors")):
        model.load_state_dict(load_file(f), strict=False)


def resolve_autocast(setting: str, cuda: bool) -> tuple[bool, str]:
    """(bfloat16 autocast on?, why) for train.autocast off|auto|bfloat16."""
    if cuda:
        return False, "off: on a GPU model.dtype sets the precision"
    if setting == "bfloat16":
        return True, "bfloat16: asked for by the recipe"
    if setting == "auto":
        from rsft.models import cpu_has_native_bf16

        if cpu_has_native_bf16():
            return True, "bfloat16: auto, the CPU has native bfloat16 (avx512_bf16/amx_bf16)"
        return False, "off (float32): auto, the CPU has no native bfloat16"
    return False, "off (float32): asked for by the recipe"


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: Path, data: TrainSet, plan: Plan, loaded, accelerator):
        self.r, self.run_dir, self.data, self.plan = recipe, run_dir, data, plan
        self.acc = accelerator
        self.tokenizer = loaded.tokenizer
        self.meta_common = {"base_model": recipe.model.name_or_path, "revision": recipe.model.revision,
                            "backend": loaded.backend, "finetune": recipe.model.finetune,
                            "recipe_fingerprint": recipe.fingerprint()}
        import torch
        from transformers import get_scheduler

        t = recipe.train
        params = [p for p in loaded.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                           weight_decay=t.weight_decay)
        # Warmup applies to every schedule, as in the paper's trainer ("constant" is constant after warmup).
        name = "constant_with_warmup" if t.lr_scheduler_type == "constant" else t.lr_scheduler_type
        self.scheduler = get_scheduler(name, self.optimizer, num_warmup_steps=plan.warmup_steps,
                                       num_training_steps=plan.total_steps)
        # The scheduler is stepped once per optimizer step by us, so it is not handed to accelerate.
        self.model, self.optimizer = self.acc.prepare(loaded.model, self.optimizer)
        self.pad_id = self.tokenizer.pad_token_id
        self.autocast, why = resolve_autocast(t.autocast, torch.cuda.is_available())
        self.acc.print(f"autocast: {why}")
        self.progress = Progress()
        self.metrics_path = run_dir / "metrics.jsonl"

    # ---------------------------------------------------------------------------------------------- resume

    def resume_from(self, ckpt: Path) -> None:
        import torch

        meta = json.loads((ckpt / META_FILE).read_text())
        _load_weights(self.acc.unwrap_model(self.model), ckpt)
        state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        self.progress = Progress(meta["step"], meta["tokens_seen"], meta["wall_time_s"], meta["loss"],
                                 meta["learning_rate"])
        self._truncate_metrics(meta["step"])
        self.acc.print(f"resuming from {ckpt} (step {meta['step']} of {self.plan.total_steps})")

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric lines of steps after the resume point (they are about to be recomputed)."""
        if not self.acc.is_main_process or not self.metrics_path.exists():
            return
        lines = [ln for ln in self.metrics_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        self.metrics_path.write_text("".join(ln + "\n" for ln in lines))

    # ---------------------------------------------------------------------------------------------- saving

    def save(self, step: int, scheduled: bool) -> Path:
        """A checkpoint folder: adapter (or weights), tokenizer, meta.json, and the resume state."""
        import torch

        self.acc.wait_for_everyone()
        out = self.run_dir / ("checkpoints/" + checkpoint_name(step) if scheduled else RESUME_DIR)
        if self.acc.is_main_process:
            tmp = out.with_name(out.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            model = self.acc.unwrap_model(self.model)
            if hasattr(model, "peft_config"):  # the adapter only; no Hub look-up of the base's vocabulary
                model.save_pretrained(tmp, save_embedding_layers=False)
            else:  # full fine-tuning: every weight
                model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            p = self.progress
            meta = {"step": step, "epoch": round(step / self.plan.steps_per_epoch, 4), "tokens_seen": p.tokens_seen,
                    "loss": p.loss, "learning_rate": p.learning_rate, "wall_time_s": round(p.wall_time_s, 2),
                    "scheduled": scheduled, **self.meta_common}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                        "rng": _rng_state()}, tmp / STATE_FILE)
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
            # Only the newest state is needed to resume; older checkpoints keep their weights only.
            for old in checkpoint_dirs(self.run_dir):
                if old != out and (old / STATE_FILE).exists():
                    (old / STATE_FILE).unlink()
            if scheduled:
                shutil.rmtree(self.run_dir / RESUME_DIR, ignore_errors=True)
        self.acc.wait_for_everyone()
        return out

    # ---------------------------------------------------------------------------------------------- the loop

    def _micro_batches(self, step: int) -> list[list]:
        """This process's micro-batches for optimizer step `step` (0-based), in the fixed data order."""
        plan, b = self.plan, self.r.train.per_device_train_batch_size
        start = (step % plan.steps_per_epoch) * plan.global_batch
        rows = self.data.examples[start : start + plan.global_batch]
        batches = [rows[i : i + b] for i in range(0, len(rows), b)]
        return batches[self.acc.process_index :: self.acc.num_processes]

    def _one_step(self, step: int) -> tuple[float, float, int]:
        import torch

        self.model.train()
        batches = self._micro_batches(step)
        losses, tokens = [], 0
        for i, rows in enumerate(batches):
            batch = {k: v.to(self.acc.device) for k, v in collate(rows, self.pad_id).items()}
            if not bool((batch["labels"] != -100).any()):
                raise UserError(f"step {step + 1}: a micro-batch has no supervised token; check the data")
            last = i == len(batches) - 1
            ctx = self.acc.no_sync(self.model) if not last else contextlib.nullcontext()
            with ctx, torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
                loss = self.model(**batch).loss  # token-mean over this micro-batch's response tokens
                self.acc.backward(loss / len(batches))
            losses.append(loss.detach().float())
            tokens += int(batch["attention_mask"].sum())
        grad_norm = self.acc.clip_grad_norm_(self.model.parameters(), self.r.train.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.acc.reduce(torch.stack(losses).mean(), reduction="mean").item()
        tokens = int(self.acc.reduce(torch.tensor(tokens, device=self.acc.device), reduction="sum").item())
        return loss, float(grad_norm), tokens

    def train(self) -> None:
        import torch
        from tqdm.auto import tqdm

        plan, p = self.plan, self.progress
        saves = set(plan.save_steps)
        bar = tqdm(total=plan.total_steps, initial=p.step, desc="train", unit="step",
                   disable=not self.acc.is_main_process)
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()  # peak_memory_gb: this loop's, not the model loading's
        with _StopFlag() as stop:
            while p.step < plan.total_steps:
                t0 = time.perf_counter()
                lr = self.scheduler.get_last_lr()[0]
                loss, grad_norm, tokens = self._one_step(p.step)
                dt = time.perf_counter() - t0
                p.step += 1
                p.tokens_seen += tokens
                p.wall_time_s += dt
                p.loss, p.learning_rate = loss, lr
                rec = {"step": p.step, "epoch": round(p.step / plan.steps_per_epoch, 4), "loss": loss,
                       "grad_norm": grad_norm, "learning_rate": lr, "tokens": tokens, "tokens_seen": p.tokens_seen,
                       "tokens_per_s": round(tokens / dt, 1), "elapsed_s": round(p.wall_time_s, 2)}
                if cuda:  # what the allocator held at its peak: the number that must fit the card
                    rec["peak_memory_gb"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
                if p.step % self.r.train.logging_steps == 0 or p.step in saves:
                    self._log(rec)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens / dt:,.0f}")
                bar.update(1)
                if p.step in saves:
                    self.save(p.step, scheduled=True)
                elif stop.requested:
                    self.save(p.step, scheduled=False)
                if stop.requested:
                    bar.close()
                    self.acc.print(f"stopped at step {p.step}; run the same command again to resume")
                    return
        bar.close()

    def _log(self, rec: dict) -> None:
        if self.acc.is_main_process:
            with self.metrics_path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
        if self.r.train.report_to != "none":
            self.acc.log({k: v for k, v in rec.items() if k != "step"}, step=rec["step"])
