"""Train one recipe: long-CoT SFT with LoRA, QLoRA or full fine-tuning, saving checkpoints on a schedule.

    python train.py recipes/quickstart.yaml                        # embedded default: offline, CPU, minutes
    python train.py recipes/qwen3-4b-base_math-cot-20k_lora.yaml --check   # validate, plan, print; no training
    python train.py RECIPE.yaml --check --gpu l4          # will it fit a 24 GB L4, and how many hours?
    python train.py RECIPE.yaml train.learning_rate=2e-4 data.limit=2560   # section.key=value overrides
    accelerate launch --config_file configs/accelerate/ddp.yaml train.py RECIPE.yaml   # several GPUs (fsdp.yaml: full)
    torchrun --nproc_per_node 2 train.py RECIPE.yaml      # several processes on CPU (gloo)

Rerunning the same command resumes from the newest checkpoint (weights, optimizer, scheduler, RNG, data
position). Ctrl-C or SIGTERM saves a resumable state after the current step. A run folder whose newest checkpoint
lacks its trainer_state*.pt is refused, never restarted over: add --resume-weights-only to continue from its weights
with a fresh optimizer (recorded in run.json), or train into a new train.output_dir. The run folder is the record:
recipe.yaml (resolved), run.json, data_stats.json, metrics.jsonl, checkpoints/stepNNNNN/.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from rsft.config import Recipe, load_recipe
from rsft.errors import NotLocal, UserError, run_cli


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="recipe YAML file (see recipes/)")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.max_steps=20")
    p.add_argument("--check", action="store_true", help="load and validate everything, print the plan, exit")
    p.add_argument("--gpu", help="with --check: estimate memory and time on this card (t4, l4, rtx-4090, l40s, "
                   "a100-80gb, h100, ...; see rsft/planner.yaml); default: the card present, else common cards")
    p.add_argument("--resume-weights-only", action="store_true", help="the newest checkpoint lacks its "
                   "trainer_state*.pt: continue from its weights with a fresh optimizer (recorded in run.json)")
    return p.parse_args(argv)


def prepare_data(recipe: Recipe, tokenizer):
    from rsft.data import apply_length_policy, load_tokenized

    tok = load_tokenized(recipe.data, tokenizer, tokenizer_id=recipe.model.name_or_path)
    return apply_length_policy(tok, recipe.data)


def _loss_arithmetic(t, plan) -> str:
    size = t.loss_group_rows or t.per_device_train_batch_size
    groups = plan.global_batch // size
    where = f", rows dealt to {t.loss_group_gpus} GPUs" if t.loss_group_gpus > 1 else ""
    scale = ("gradients averaged" if t.grad_accumulation == "mean" else
             f"gradients summed / {t.loss_group_gpus} = {groups / t.loss_group_gpus:g}x their mean")
    return (f"token mean per {size}-row group{where}; {groups} groups, {scale}; clip {t.max_grad_norm}; "
            f"a non-finite step: {t.nonfinite_grad_norm}")


def describe(recipe: Recipe, plan, stats: dict) -> str:
    t = recipe.train
    lines = [
        f"recipe          {recipe.source}  (fingerprint {recipe.fingerprint()})",
        f"run folder      {recipe.run_dir()}",
        f"model           {recipe.model.name_or_path}  finetune={recipe.model.finetune} backend={recipe.model.backend}",
        f"data            {recipe.data.path}: {stats['rows']} rows, {stats['kept']} kept",
        f"malformed rows  {stats['malformed_skipped']} skipped (data.on_bad_row={recipe.data.on_bad_row})",
        f"tokens/row      p50 {stats['tokens_p50']}  p90 {stats['tokens_p90']}  p99 {stats['tokens_p99']}  "
        f"max {stats['tokens_max']}",
        f"over max_length {stats['over_max_length']} rows > {recipe.data.max_length} tokens -> "
        f"{recipe.data.over_length} ({stats['truncated']} truncated, {stats['dropped']} dropped)",
        f"effective batch {plan.global_batch} = {t.per_device_train_batch_size} per device x "
        f"{t.gradient_accumulation_steps} accumulation x {plan.world_size} processes",
        f"steps/epoch     {plan.steps_per_epoch} ({plan.dropped_rows_per_epoch} rows/epoch left over)",
        f"loss            {_loss_arithmetic(t, plan)}",
        f"total steps     {plan.total_steps} ({plan.warmup_steps} warmup, {t.lr_scheduler_type}, lr {t.learning_rate})",
        f"checkpoints     {', '.join(map(str, plan.save_steps))}" + (
            f"  (note: checkpoints.steps {list(plan.dropped_saves)} dropped: beyond train.max_steps "
            f"{t.max_steps})" if plan.dropped_saves else ""),
        f"supervised      {stats['supervised_tokens']:,} response tokens per epoch",
    ]
    return "\n".join(lines)


def _run_record(recipe: Recipe, loaded) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "unsloth", "bitsandbytes"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {"fingerprint": recipe.fingerprint(), "backend": loaded.backend, "backend_reason": loaded.why,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "versions": versions}


def _check_run_folder(recipe: Recipe, run_dir: Path) -> None:
    record = run_dir / "run.json"
    if record.exists():
        try:
            old = json.loads(record.read_text())["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{record} is damaged (no readable recipe fingerprint); restore it, or set "
                            "train.output_dir to a new folder") from None
        if old != recipe.fingerprint():
            raise UserError(
                f"{run_dir} holds a run of a different recipe (fingerprint {old}, now {recipe.fingerprint()}); "
                "set train.output_dir to a new folder, or delete the old one"
            )


def main(argv=None) -> int:
    args = parse_args(argv)
    recipe = load_recipe(args.recipe, args.overrides)
    if args.gpu:
        if not args.check:
            raise UserError("--gpu goes with --check (training uses the card it runs on)")
        from rsft.planner import gpu

        gpu(args.gpu)  # an unknown name fails now, not after the data is tokenized
    run_dir = recipe.run_dir()
    lock = None if args.check else _lock_run_folder(run_dir)  # before anything reads the folder
    try:  # held while this run trains; a second train.py on the folder would clobber its saves and metrics
        return _train(args, recipe, run_dir)
    finally:
        if lock is not None:
            lock.close()


def _cpu_only() -> bool:
    """Train on the CPU: no CUDA GPU, or `accelerate launch --cpu` (its ACCELERATE_USE_CPU). The process group
    is formed once, by whichever of PartialState and the Accelerator comes first, so both are told the same."""
    import torch
    from accelerate.utils import parse_flag_from_env

    return not torch.cuda.is_available() or parse_flag_from_env("ACCELERATE_USE_CPU")


def _lock_run_folder(run_dir: Path):
    """The run folder's training lock (rsft.rundir.TRAIN_LOCK), taken by the main process, which tells every other
    process of the run whether it was refused (or could not lock), so that they all stop with the same message.
    Without a launcher agent to stop them (processes started by srun or mpirun with torchrun's RANK, WORLD_SIZE and
    MASTER_ADDR exported, or on CPU MPI's own variables, which accelerate reads), the others would otherwise wait
    for a rank 0 that has left until the process group's timeout."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from rsft.rundir import TRAIN_LOCK, lock_folder

    state = PartialState(cpu=_cpu_only())  # the group the Accelerator made later joins
    lock, refusal = None, [None]
    if state.is_main_process:
        try:
            lock = lock_folder(run_dir, TRAIN_LOCK, f"another train.py is writing {run_dir} now; wait for it (or "
                               "stop it), or train into another train.output_dir")
        except UserError as e:
            refusal = [str(e)]
        except OSError as e:  # a read-only or foreign folder, a file in its place, no locks on this filesystem
            refusal = [f"cannot lock the run folder {run_dir}: {e}; set train.output_dir to a writable folder"]
    if state.num_processes > 1:
        broadcast_object_list(refusal)
    if refusal[0]:
        if state.num_processes > 1:
            torch.distributed.destroy_process_group()
        raise UserError(refusal[0])
    return lock


def check_tracker(name: str) -> None:
    """train.report_to's package is importable (accelerate's own test), or one line with its install command,
    before any data is read: --check fails too."""
    if name == "none":
        return
    import accelerate.utils

    if not getattr(accelerate.utils, f"is_{name}_available")():  # every LoggerType has one
        raise UserError(f"train.report_to: {name} needs the {name} package: pip install {name}")


def _train(args, recipe: Recipe, run_dir: Path) -> int:
    _check_run_folder(recipe, run_dir)
    check_tracker(recipe.train.report_to)
    from rsft.models import preflight

    try:
        model_path = preflight(recipe)  # offline and not cached, or a wrong target module: one line, in seconds
        if args.check:
            from rsft.models import load_tokenizer

            tokenizer = load_tokenizer(model_path, recipe)
            data = prepare_data(recipe, tokenizer)
    except NotLocal:
        if args.check:  # what can be planned without the files: from the model's known shape and the recipe
            from rsft.planner import offline_plan_lines

            print("\n".join(offline_plan_lines(recipe, args.gpu, "the model, its tokenizer or the data is not on "
                                                                    "this machine (below); planned without them")))
        raise

    from accelerate import Accelerator

    from rsft.rundir import write_json_atomic
    from rsft.models import load_for_training, load_tokenizer
    from rsft.schedule import make_plan

    if args.check:
        plan = make_plan(recipe.train, recipe.checkpoints, len(data))
        print(describe(recipe, plan, data.stats))
        from rsft.planner import plan_lines

        print("\n".join(plan_lines(recipe, data.examples, plan, args.gpu)))
        return 0

    log_with = None if recipe.train.report_to == "none" else recipe.train.report_to
    import torch

    # cpu=True on a machine without CUDA lets torchrun's processes join one gloo group (else each trains alone)
    acc = Accelerator(log_with=log_with, project_dir=str(run_dir), cpu=_cpu_only())
    loaded = load_for_training(recipe)
    acc.print(f"backend: {loaded.backend} ({loaded.why}); finetune: {recipe.model.finetune}")
    data = prepare_data(recipe, loaded.tokenizer)
    plan = make_plan(recipe.train, recipe.checkpoints, len(data), world_size=acc.num_processes)
    acc.print(describe(recipe, plan, data.stats))
    if torch.cuda.is_available() and acc.num_processes == 1:  # the estimate for this card, before any step
        from rsft.planner import plan_lines

        acc.print("\n".join(plan_lines(recipe, data.examples, plan, backend=loaded.backend)))
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        write_json_atomic(run_dir / "data_stats.json", data.stats)
        if not (run_dir / "run.json").exists():
            write_json_atomic(run_dir / "run.json", _run_record(recipe, loaded))
    if log_with:
        flat = {f"{sec}.{k}": v if isinstance(v, (int, float, str, bool)) else str(v)
                for sec, d in recipe.to_dict().items() for k, v in d.items()}  # trackers take flat scalars
        acc.init_trackers(run_dir.name, config=flat)

    from rsft.trainer import Trainer

    trainer = Trainer(recipe, run_dir, data, plan, loaded, acc, weights_only=args.resume_weights_only)  # resumes
    if trainer.progress.step >= plan.total_steps:
        acc.print(f"{run_dir} is already complete ({plan.total_steps} steps); nothing to do")
        return 0
    try:
        trainer.train()
    except Exception as e:  # CUDA out of memory gets the knobs that help, in one line
        if type(e).__name__ == "OutOfMemoryError":
            raise UserError(
                "CUDA out of memory; lower train.per_device_train_batch_size (raise gradient_accumulation_steps to "
                "keep the batch), use model.finetune: qlora, keep model.gradient_checkpointing: true, or lower "
                f"data.max_length (now {recipe.data.max_length})"
            ) from None
        raise
    finally:
        if log_with:
            acc.end_training()
    if trainer.progress.step >= plan.total_steps:
        acc.print(f"done: {len(plan.save_steps)} checkpoints in {run_dir / 'checkpoints'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
