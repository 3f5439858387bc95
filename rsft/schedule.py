"""Step arithmetic of a run: optimizer steps, and which of them are saved as checkpoints."""
from __future__ import annotations

from dataclasses import dataclass

from rsft.config import CheckpointConfig, TrainConfig
from rsft.errors import UserError


@dataclass(frozen=True)
class Plan:
    rows: int  # rows after the over-length policy and bad-row skips
    world_size: int  # processes under `accelerate launch` (1 on one GPU)
    global_batch: int  # rows per optimizer step = micro-batch x accumulation x processes
    steps_per_epoch: int  # rows // global_batch: an incomplete last batch is dropped, as the paper's loader
    total_steps: int
    warmup_steps: int
    save_steps: tuple[int, ...]
    dropped_saves: tuple[int, ...] = ()  # checkpoints.steps beyond train.max_steps: not saved (a shortened run)

    @property
    def dropped_rows_per_epoch(self) -> int:
        return self.rows - self.steps_per_epoch * self.global_batch


def checkpoint_steps(cfg: CheckpointConfig, total_steps: int, shortened: bool = False) -> tuple[int, ...]:
    """The steps saved: checkpoints.steps, every, the doublings, and always the last step. `shortened`: the run is
    cut by train.max_steps (a smoke test), so checkpoints.steps beyond it are dropped (make_plan notes them);
    otherwise such steps are a mistake in the recipe."""
    late = [s for s in cfg.steps if s > total_steps]
    if late and not shortened:
        raise UserError(f"checkpoints.steps {late} lie beyond the last step ({total_steps})")
    steps = {s for s in cfg.steps if s <= total_steps} | {total_steps}
    if cfg.every:
        steps |= set(range(cfg.every, total_steps + 1, cfg.every))
    if cfg.doubling_from:
        s = cfg.doubling_from
        while s <= total_steps:
            steps.add(s)
            s *= 2
    return tuple(sorted(steps))


def _check_loss_groups(train: TrainConfig, global_batch: int) -> None:
    """Loss groups must tile the step, and each micro-batch must lie inside one group (so its weight is exact)."""
    rows, gpus = train.loss_group_rows, train.loss_group_gpus
    if gpus < 1:
        raise UserError(f"train.loss_group_gpus must be at least 1, got {gpus}")
    if rows is None:
        if gpus > 1:
            raise UserError("train.loss_group_gpus deals rows into loss groups: set train.loss_group_rows too")
        return
    if rows < 1 or rows % train.per_device_train_batch_size:
        raise UserError(f"train.loss_group_rows ({rows}) must be a positive multiple of "
                        f"train.per_device_train_batch_size ({train.per_device_train_batch_size})")
    if global_batch % (rows * gpus):
        raise UserError(f"a step of {global_batch} rows does not split into loss groups of {rows} rows on "
                        f"{gpus} GPUs ({rows * gpus} rows a round); change train.loss_group_rows or loss_group_gpus")


def make_plan(train: TrainConfig, ckpt: CheckpointConfig, rows: int, world_size: int = 1) -> Plan:
    global_batch = train.per_device_train_batch_size * train.gradient_accumulation_steps * world_size
    steps_per_epoch = rows // global_batch
    if steps_per_epoch == 0:
        raise UserError(
            f"{rows} rows are fewer than one optimizer step of {global_batch} rows "
            f"({train.per_device_train_batch_size} per device x {train.gradient_accumulation_steps} accumulation"
            f" x {world_size} processes); lower train.gradient_accumulation_steps or use more data"
        )
    _check_loss_groups(train, global_batch)
    total = train.max_steps if train.max_steps is not None else steps_per_epoch * train.num_train_epochs
    shortened = train.max_steps is not None
    return Plan(
        rows=rows,
        world_size=world_size,
        global_batch=global_batch,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        warmup_steps=int(train.warmup_ratio * total),
        save_steps=checkpoint_steps(ckpt, total, shortened),
        dropped_saves=tuple(s for s in ckpt.steps if s > total) if shortened else (),
    )
