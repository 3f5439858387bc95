"""The training loop: fixed data order, the recipe's loss arithmetic, scheduled checkpoints, exact resume.

Data position is a function of the step (fixed order, as the paper's `shuffle_train=False`): step s of epoch
e = s // steps_per_epoch reads rows [(s mod steps_per_epoch) * global_batch, ... + global_batch). So a resumed run
needs only the step, the weights, the optimizer, the scheduler and the RNG states to continue exactly.

Loss arithmetic (train.loss_group_rows, loss_group_gpus, grad_accumulation). A step minimises
    sum over its loss groups g of  c * (sum of g's token losses) / (g's supervised tokens)
where a group is a micro-batch by default, or loss_group_rows rows of the step as the paper's GPUs held them, and
c = 1 / (number of groups) under `mean`, 1 / loss_group_gpus under `sum`. Every micro-batch lies inside one group
and its token-mean loss is weighted by c x its tokens / its group's tokens, so the sum is exact whatever the
micro-batch size memory allows. The paper's trainer (github Nebularaid2000/rethink_sft_generalization @ 3378e2b,
verl/trainer/fsdp_sft_trainer_ours.py; training_scripts/*_bs256.sh: train_batch_size 256, micro_batch_size_per_gpu
4, loss_agg_mode token-mean):
  l.182      DistributedSampler(shuffle=False): GPU r holds rows r, r+N, r+2N, ... of the data (N GPUs)
  l.499      micro_batches = batch.split(micro_batch_size_per_gpu): 4 of the GPU's rows each
  l.455-464  compute_loss(..., loss_agg_mode="token-mean") -> agg_loss (verl.trainer.ppo.core_algos, from verl
             itself, not in the paper's repo): verl_F.masked_mean(loss_mat, loss_mask), over the micro-batch's tokens
  l.466-467  loss.backward() per micro-batch, not divided by their number: the GPU's gradient is their sum
  l.517/519  clip_grad_norm_(max_norm=optim.clip_grad, 1.0) on that summed gradient; FSDP averages the GPUs'
  l.525-530  a non-finite grad norm: zero_grad and no optimizer step; l.534 the lr scheduler steps either way
  l.509      the logged loss: the mean of the micro-batch losses, averaged over GPUs (as `loss` here)
At batch 256 on 8 GPUs (the paper's README: 8 x H200; its scripts read the count from the environment) a GPU sums
8 micro-batch gradients: 8x the mean, so the clip at 1.0 binds like 0.125 would on the mean gradient. The recipes
that claim the paper's setting set loss_group_rows 4, loss_group_gpus 8, grad_accumulation sum, and
nonfinite_grad_norm skip.

Health: a step whose loss or gradient norm is not finite stops the run before its update, naming the last good
checkpoint (train.nonfinite_grad_norm: stop), or is skipped as verl did (skip: no update, the schedule advances,
counted in metrics.jsonl; MAX_SKIPS_IN_A_ROW skipped steps in a row stop the run: the data or the precision is
broken, not one step). An update that makes a weight non-finite stops the run either way. Nothing non-finite is
ever saved.

Checkpoints (saved at the plan's steps and on Ctrl-C / SIGTERM, resumed from the newest) are rsft/checkpoints.py's.

Several processes: `torchrun --nproc_per_node N train.py ...` (CPU: gloo) or `accelerate launch --config_file
configs/accelerate/{ddp,fsdp}.yaml train.py ...`; each process takes every N-th micro-batch of a step and the
gradients are averaged.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from rsft import checkpoints
from rsft.checkpoints import TrainingState, find_resume_point, read_meta
from rsft.config import Recipe
from rsft.data import TrainSet, collate
from rsft.errors import UserError
from rsft.rundir import checkpoint_dirs, write_jsonl_atomic
from rsft.schedule import Plan

MAX_SKIPS_IN_A_ROW = 5  # train.nonfinite_grad_norm: skip stops the run after this many skipped steps in a row


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no NaN


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
class MicroBatch:
    rows: list
    weight: float  # its token-mean loss x weight = its share of the step's objective
    share: float  # its token-mean loss x share = its share of the logged loss (the mean of group token means)


def supervised_tokens(example) -> int:
    """Tokens one row adds to a token mean: labels shift by one, so positions max(prompt_len, 1) .. n-1 (collate)."""
    return len(example.input_ids) - max(example.prompt_len, 1)


def loss_groups(rows: list, train) -> list[list]:
    """A step's rows in loss groups: micro-batches, or the paper's micro-batches as its GPUs held them."""
    if train.loss_group_rows is None:
        b = train.per_device_train_batch_size
        return [rows[i : i + b] for i in range(0, len(rows), b)]
    n, size = train.loss_group_gpus, train.loss_group_rows
    dealt = [rows[gpu::n] for gpu in range(n)]  # verl l.182: DistributedSampler(shuffle=False), row j to GPU j % n
    return [held[i : i + size] for held in dealt for i in range(0, len(held), size)]


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
    def __init__(self, recipe: Recipe, run_dir: Path, data: TrainSet, plan: Plan, loaded, accelerator,
                 weights_only: bool = False):
        """weights_only: the user's opt-in (train.py --resume-weights-only) to continue from a newest save that lacks
        its training state with its weights and a fresh optimizer; without it such a run folder is refused."""
        self.r, self.run_dir, self.data, self.plan = recipe, run_dir, data, plan
        self.acc = accelerator
        self.tokenizer = loaded.tokenizer
        self.meta_common = {"base_model": recipe.model.name_or_path, "revision": recipe.model.revision,
                            "backend": loaded.backend, "finetune": recipe.model.finetune,
                            "recipe_fingerprint": recipe.fingerprint()}
        import torch
        from accelerate.utils import DistributedType
        from transformers import get_scheduler

        t = recipe.train
        params = [p for p in loaded.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                           weight_decay=t.weight_decay)
        # Warmup applies to every schedule, as in the paper's trainer ("constant" is constant after warmup).
        name = "constant_with_warmup" if t.lr_scheduler_type == "constant" else t.lr_scheduler_type
        self.scheduler = get_scheduler(name, self.optimizer, num_warmup_steps=plan.warmup_steps,
                                       num_training_steps=plan.total_steps)
        self.metrics_path = run_dir / "metrics.jsonl"
        if self.acc.is_main_process:
            checkpoints.remove_incomplete_saves(run_dir)
        self.acc.wait_for_everyone()
        resume = checkpoints.find_resume(run_dir, plan.total_steps, self.acc.num_processes, weights_only,
                                         self.acc.print)
        self.progress = resume.progress
        if resume.save is not None:  # the weights go in before accelerate wraps (and FSDP shards) the model
            checkpoints.load_weights(loaded.model, resume.save)
        # The scheduler is stepped once per optimizer step by us, so it is not handed to accelerate.
        self.model, self.optimizer = self.acc.prepare(loaded.model, self.optimizer)
        self.sharded = self.acc.distributed_type == DistributedType.FSDP  # optimizer state differs per rank
        self.pad_id = self.tokenizer.pad_token_id
        self.autocast, why = resolve_autocast(t.autocast, torch.cuda.is_available())
        self.acc.print(f"precision: {str(loaded.dtype).removeprefix('torch.')} base ({loaded.dtype_why}); "
                       f"autocast {why}")
        self.scaler = self._loss_scaler(loaded.dtype)
        checkpoints.restore(resume, run_dir, self.acc, self._state(), plan.total_steps)
        self._truncate_metrics(self.progress.step)

    def _loss_scaler(self, dtype):
        """float16 gradients below 6e-8 flush to zero (the 135M model's adapter gradients lost 36% against float32,
        silently): the loss is scaled up before backward and the gradients unscaled in float32 before the clip
        (torch.amp.GradScaler: 2^16 at first, doubled after 2000 clean steps). A step whose scaled gradient
        overflows is redone at half the scale, so no step's data is dropped."""
        import torch

        if dtype != torch.float16:
            return None
        if any(p.dtype == torch.float16 for p in self.model.parameters() if p.requires_grad):
            raise UserError("float16 trainable weights (model.finetune: full with model.dtype float16 or auto on a "
                            "card without bfloat16) lose AdamW's small updates and cannot be loss-scaled; set "
                            "model.dtype: float32, or use model.finetune: lora")
        self.acc.print("loss scaling: on (float16 base; torch.amp.GradScaler, an overflowing step is redone at half "
                       "the scale)")
        return torch.amp.GradScaler(self.acc.device.type)

    def _truncate_metrics(self, step: int) -> None:
        """Keep metric lines up to the resume point only (later ones are about to be recomputed; a line torn by a
        kill is dropped), so metrics.jsonl never holds a step twice."""
        if not self.acc.is_main_process or not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rec = json.loads(line)
                if rec["step"] <= step:
                    kept.append(rec)
            except (ValueError, KeyError, TypeError):
                pass
        write_jsonl_atomic(self.metrics_path, kept)  # a kill now leaves the old file or the new one

    # ---------------------------------------------------------------------------------------------- saving

    def _state(self) -> TrainingState:
        return TrainingState(self.optimizer, self.scheduler, self.scaler, self.sharded)

    def save(self, step: int, scheduled: bool) -> Path:
        """A checkpoint (scheduled) or the interrupt state, with this step's progress in its meta.json."""
        p = self.progress
        meta = {"step": step, "epoch": round(step / self.plan.steps_per_epoch, 4), "tokens_seen": p.tokens_seen,
                "loss": p.loss, "learning_rate": p.learning_rate, "wall_time_s": round(p.wall_time_s, 2),
                "skipped_steps": p.skipped_steps, "skips_in_a_row": p.skips_in_a_row,
                "world_size": self.acc.num_processes, "scheduled": scheduled, **self.meta_common}
        return checkpoints.save(self.run_dir, self.acc, self.model, self.tokenizer, self._state(), meta)

    # ---------------------------------------------------------------------------------------------- the loop

    def _micro_batches(self, step: int) -> list[MicroBatch]:
        """This process's micro-batches for optimizer step `step` (0-based), in the fixed data order."""
        t, plan = self.r.train, self.plan
        start = (step % plan.steps_per_epoch) * plan.global_batch
        groups = loss_groups(self.data.examples[start : start + plan.global_batch], t)
        c = 1 / len(groups) if t.grad_accumulation == "mean" else 1 / t.loss_group_gpus
        out, b = [], t.per_device_train_batch_size
        for group in groups:
            total = sum(supervised_tokens(e) for e in group)
            for i in range(0, len(group), b):
                rows = group[i : i + b]
                tokens = sum(supervised_tokens(e) for e in rows)
                if tokens <= 0:
                    raise UserError(f"step {step + 1}: a micro-batch has no supervised token; check the data")
                out.append(MicroBatch(rows, c * tokens / total, tokens / total / len(groups)))
        return out[self.acc.process_index :: self.acc.num_processes]

    def _forward_backward(self, step: int) -> tuple[float, int]:
        """Accumulate the step's gradient; returns the logged loss (every process's) and this step's tokens."""
        import torch

        self.model.train()
        batches = self._micro_batches(step)
        loss_sum, tokens = torch.zeros((), device=self.acc.device), 0
        for i, mb in enumerate(batches):
            batch = {k: v.to(self.acc.device) for k, v in collate(mb.rows, self.pad_id).items()}
            ctx = self.acc.no_sync(self.model) if i < len(batches) - 1 else contextlib.nullcontext()
            with ctx, torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
                loss = self.model(**batch).loss  # token mean over this micro-batch's response tokens
                # x processes: data parallelism averages the processes' gradients, the objective is their sum
                objective = loss * (mb.weight * self.acc.num_processes)
                self.acc.backward(objective if self.scaler is None else self.scaler.scale(objective))
            loss_sum += loss.detach().float() * mb.share
            tokens += int(batch["attention_mask"].sum())
        loss = self.acc.reduce(loss_sum, reduction="sum").item()
        tokens = int(self.acc.reduce(torch.tensor(tokens, device=self.acc.device), reduction="sum").item())
        return loss, tokens

    def _weights_finite(self) -> bool:
        import torch

        params = [p.detach() for p in self.model.parameters() if p.requires_grad and p.numel()]
        bad = torch.tensor(float(not torch.isfinite(torch.nn.utils.get_total_norm(params))), device=self.acc.device)
        return self.acc.reduce(bad, reduction="sum").item() == 0  # FSDP: every rank checks its shard

    def _unhealthy(self, step: int, what: str) -> UserError:
        last = find_resume_point(self.run_dir) or (checkpoint_dirs(self.run_dir) or [None])[-1]
        where = (f"the last good checkpoint is {last} (step {read_meta(last)['step']})" if last is not None
                 else "no checkpoint was saved before it")
        return UserError(
            f"step {step}: {what}; stopped with nothing of this step saved, {where}. Lower train.learning_rate, use "
            "model.dtype bfloat16 or float32 instead of float16, or set train.nonfinite_grad_norm: skip (the paper's "
            "rule), in a new train.output_dir")

    def _gradient(self, step: int) -> tuple[float, int]:
        """The step's gradient, unscaled, in the parameters' .grad: (logged loss, tokens)."""
        loss, tokens = self._forward_backward(step)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        return loss, tokens

    def _one_step(self, step: int) -> tuple[float, float, int, bool]:
        """One optimizer step: (logged loss, gradient norm before the clip, tokens, skipped)."""
        t = self.r.train
        while True:
            loss, tokens = self._gradient(step)
            grad_norm = float(self.acc.clip_grad_norm_(self.model.parameters(), t.max_grad_norm))
            scale = self.scaler.get_scale() if self.scaler is not None else 1.0
            if math.isfinite(grad_norm) or not math.isfinite(loss) or scale <= 1.0:
                break
            self.optimizer.zero_grad(set_to_none=True)  # the scaled gradient overflowed float16: redo the step
            self.scaler.update(scale / 2)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            if t.nonfinite_grad_norm == "stop":
                raise self._unhealthy(step + 1, f"the loss is {loss:.4g} and the gradient norm {grad_norm:.4g}")
            self.optimizer.zero_grad(set_to_none=True)  # verl l.525-534: no update, the schedule advances
            self.scheduler.step()
            if self.scaler is not None:
                self.scaler.update()
            return loss, grad_norm, tokens, True
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)  # the gradient is finite (checked above), so this steps
            self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if not self._weights_finite():
            raise self._unhealthy(step + 1, f"its update (loss {loss:.4g}, gradient norm {grad_norm:.4g}) made "
                                            "weights non-finite")
        return loss, grad_norm, tokens, False

    def _stop_requested(self, stop: _StopFlag) -> bool:
        """A signal reaches each process on its own; every process must agree to save together."""
        import torch

        if self.acc.num_processes == 1:
            return stop.requested
        flag = torch.tensor(float(stop.requested), device=self.acc.device)
        return self.acc.reduce(flag, reduction="sum").item() > 0

    def _advance(self, loss: float, grad_norm: float, tokens: int, skipped: bool, lr: float, dt: float) -> dict:
        """Count a finished step into the progress; returns its metrics.jsonl record."""
        import torch

        p = self.progress
        p.step += 1
        p.tokens_seen += tokens
        p.wall_time_s += dt
        p.learning_rate = lr
        p.loss = p.loss if skipped else loss
        p.skipped_steps += skipped
        p.skips_in_a_row = p.skips_in_a_row + 1 if skipped else 0
        rec = {"step": p.step, "epoch": round(p.step / self.plan.steps_per_epoch, 4), "loss": _finite(loss),
               "grad_norm": _finite(grad_norm), "learning_rate": lr, "tokens": tokens, "tokens_seen": p.tokens_seen,
               "tokens_per_s": round(tokens / dt, 1), "elapsed_s": round(p.wall_time_s, 2),
               "skipped_steps": p.skipped_steps}
        if skipped:
            rec["skipped"] = True
        if torch.cuda.is_available():  # what the allocator held at its peak: the number that must fit the card
            rec["peak_memory_gb"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
        return rec

    def train(self) -> None:
        import torch
        from tqdm.auto import tqdm

        plan, p = self.plan, self.progress
        saves = set(plan.save_steps)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()  # peak_memory_gb: this loop's, not the model loading's
        with _StopFlag() as stop, tqdm(total=plan.total_steps, initial=p.step, desc="train", unit="step",
                                       disable=not self.acc.is_main_process) as bar:
            while p.step < plan.total_steps:
                t0 = time.perf_counter()
                lr = self.scheduler.get_last_lr()[0]
                loss, grad_norm, tokens, skipped = self._one_step(p.step)
                dt = time.perf_counter() - t0
                rec = self._advance(loss, grad_norm, tokens, skipped, lr, dt)
                if p.step % self.r.train.logging_steps == 0 or p.step in saves or skipped:
                    self._log(rec)
                if skipped:
                    self.acc.print(f"step {p.step}: gradient norm {grad_norm:.4g}, loss {loss:.4g}: step skipped "
                                   f"({p.skipped_steps} so far, train.nonfinite_grad_norm: skip)")
                if p.skips_in_a_row >= MAX_SKIPS_IN_A_ROW:
                    raise self._unhealthy(p.step, f"{p.skips_in_a_row} steps in a row had a non-finite loss or "
                                                  "gradient norm and were skipped")
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens / dt:,.0f}")
                bar.update(1)
                stopping = self._stop_requested(stop)
                if p.step in saves:
                    self.save(p.step, scheduled=True)
                elif stopping:
                    self.save(p.step, scheduled=False)
                if stopping:
                    bar.close()
                    self.acc.print(f"stopped at step {p.step}; run the same command again to resume")
                    return

    def _log(self, rec: dict) -> None:
        if self.acc.is_main_process:
            with self.metrics_path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
        if self.r.train.report_to != "none":
            self.acc.log({k: v for k, v in rec.items() if k != "step" and v is not None}, step=rec["step"])
