"""Evaluate the base model (step 0) and every checkpoint of a run through lm-eval task definitions.

    python evaluate.py runs/quickstart                          # suite and preset from the run's recipe
    python evaluate.py runs/NAME --steps 0,40,640 --suite paper --preset consumer
    python evaluate.py --model jasonrqh/Qwen3-1.7B_Math-CoT-20k_lr5e-5_ep8_bs256 --subfolder step640 \
        --out evals/qwen3-1.7b-cot-step640 --suite math          # any model, no training needed
    python evaluate.py --model Qwen/Qwen3-1.7B-Base --adapter runs/NAME/checkpoints/step00640 --out evals/x
    python evaluate.py --download-data data/                    # once, online: every downloadable benchmark
    python evaluate.py runs/NAME --suite paper --estimate       # tokens to generate and time, then exit
    python evaluate.py runs/NAME --suite safety --judge rubric=Qwen/Qwen2.5-7B-Instruct   # a local rubric judge
    python evaluate.py runs/NAME --suite judged --judge-only    # judge again what was generated (new key, judge)

Each model runs in a fresh process (rsft/eval_worker.py). Results: RUN/eval/PRESET/stepNNNNN/TASK.json (+ its
samples and lm-eval's own results; layout in rsft/rundir.py), written atomically; a rerun skips finished
(checkpoint, task) pairs, so an interrupted evaluation resumes: Ctrl-C or SIGTERM stops the worker and ends with one
line naming the step and task. `--limit N` (a smoke test) writes to RUN/eval/PRESET-limitN/, never into the
preset's folder (--model writes where --out says). A task whose data is missing is skipped with its
reason (STEP/skipped.json) while the others run. Judge-scored tasks (rsft/judges/) are judged after generation, in
one more fresh process, so the judge has the GPU to itself; a rerun asks the judges only about samples they have not
judged yet.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rsft.errors import Interrupted, UserError, run_cli
from rsft.eval_backend import eval_dtype, pick_generation_backend
from rsft.processes import run_one
from rsft.results import score_line

if TYPE_CHECKING:
    from rsft.catalogue import Preset
    from rsft.specs import WorkerSpec

CPU_BATCH = 128  # hf on CPU: prompts per generate call (200 quickstart prompts: 128 + 72); bench/RESULTS.md


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", help="a run folder written by train.py")
    p.add_argument("--steps", help="comma-separated steps to evaluate (0 = the base model); default: all")
    p.add_argument("--suite", help="suite or comma-separated tasks (default: the recipe's eval.suite)")
    p.add_argument("--preset", help="paper | consumer | quickstart (default: the recipe's eval.preset)")
    p.add_argument("--data-dir", help="folder with TASK/test.jsonl (default: $RSFT_CACHE/eval-data)")
    p.add_argument("--backend", default="auto", choices=["auto", "hf", "vllm"],
                   help="auto: vllm on a CUDA GPU when installed, else hf")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs per model")
    p.add_argument("--batch-size", type=int, help="hf backend: prompts per generate call (lm-eval sorts them by "
                   "length); default 128 on CPU (1.1-1.3x the tokens/s of batch 64 on 2 cores, bench/RESULTS.md; "
                   "lower it for a model above ~0.5B on CPU: the key/value cache grows with it), 8 on a GPU, where "
                   "responses run to thousands of tokens. On CPU a sampled reply does not depend on it (the "
                   "noise is keyed per question), up to bf16 rounding")
    p.add_argument("--limit", type=int, help="first N questions of every task, instead of the preset's (recorded "
                   "in each result as the preset's limit), a smoke test: a run's results go to eval/PRESET-limitN/, "
                   "never into the preset's folder")
    p.add_argument("--model", help="evaluate any model: Hub id or local folder (instead of a run)")
    p.add_argument("--revision")
    p.add_argument("--subfolder", help="e.g. step640 in the paper's released repositories")
    p.add_argument("--adapter", help="a LoRA adapter folder to put on --model")
    p.add_argument("--out", help="with --model: where results go")
    p.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code")
    p.add_argument("--download-data", metavar="DIR", help="fill DIR with the paper suite's data (online), exit")
    p.add_argument("--judge", action="append", metavar="ROLE=MODEL",
                   help="replace a judge (roles: rubric, reward, truth, info; defaults in rsft/judges/phase.py); "
                        "rubric=api:MODEL asks an OpenAI-compatible endpoint, key in $OPENAI_API_KEY")
    p.add_argument("--judge-endpoint", help="base URL for api: judges (default: $OPENAI_BASE_URL, else OpenAI's)")
    p.add_argument("--judge-only", action="store_true", help="generate nothing; judge what is generated")
    p.add_argument("--estimate", action="store_true",
                   help="print the evaluation plan (tokens to generate, time where a speed was measured) and exit")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.download_data:  # once, online: every downloadable benchmark's data, then exit
        return download_data(Path(args.download_data))
    from rsft.judges.phase import resolve_judges

    judges = resolve_judges(args.judge)  # a mistyped --judge fails now, not after hours of generation
    backend = pick_generation_backend(args.backend)
    target = model_target(args) if args.model else run_target(args)  # what: the models, suite, preset, folder
    plan = make_plan(args, target, backend, judges)  # how: tasks, preset, precision; the model reachable
    if args.estimate:
        return estimate(plan)
    return run(plan)  # each model in a fresh process, then the judges, then the model cards


def download_data(data_dir: Path) -> int:
    """--download-data DIR: every downloadable benchmark into DIR; one refused download stops no other."""
    from rsft.task_data import download

    failed = download(data_dir)
    if failed:
        raise UserError(f"{len(failed)} benchmark(s) not downloaded: {', '.join(failed)} (reasons above); "
                        f"the others are in {data_dir}")
    return 0


# ------------------------------------------------------------------------------------------------ what: the target


@dataclass(frozen=True)
class Target:
    """What one command evaluates: a base model and its checkpoints, on one suite under one preset, into one folder.
    Built from a run folder (run_target) or from --model (model_target); nothing is loaded yet."""

    name: str  # the model as the command or the recipe names it (the estimate knows a model's shape by it)
    base: str  # what the worker loads: a Hub id, or a local folder as an absolute path (it runs from the repo root)
    revision: str | None  # Hub revision of base
    subfolder: str | None  # e.g. step640 in the paper's released repositories
    trust_remote_code: bool
    jobs: tuple[tuple[int, Path | None], ...]  # (step, adapter or full checkpoint folder); (0, None): the base
    suite: str  # a suite or comma-separated tasks (rsft/catalogue.py)
    preset_name: str  # paper | consumer | quickstart
    out_root: Path  # RUN/eval/PRESET (PRESET-limitN under --limit), or --out
    run_dir: Path | None = None  # the run folder; None with --model

    def out_dir(self, step: int) -> Path:
        """One model's results folder: the step's in a run (stepNNNNN), --out itself with --model."""
        from rsft.rundir import step_name

        return self.out_root if self.run_dir is None else self.out_root / step_name(step)


def model_target(args) -> Target:
    """--model: any model, a Hub id or a local folder (--adapter on it), on --suite and --preset (default: paper),
    results in --out."""
    if args.run:
        raise UserError("give either a run folder or --model, not both")
    if not args.out:
        raise UserError("--model needs --out, the folder for its results")
    from rsft.models import resolve_model_path

    base = _abs_if_local(resolve_model_path(args.model))
    if args.adapter and not (Path(args.adapter) / "adapter_config.json").exists():
        raise UserError(f"--adapter {args.adapter}: no adapter_config.json there")
    return Target(name=args.model, base=base, revision=args.revision, subfolder=args.subfolder,
                  trust_remote_code=args.trust_remote_code,
                  jobs=((0, Path(args.adapter).resolve() if args.adapter else None),),
                  suite=args.suite or "paper", preset_name=args.preset or "paper", out_root=Path(args.out).resolve())


def run_target(args) -> Target:
    """A run folder written by train.py: the base model (step 0) and each checkpoint (--steps picks), on the
    recipe's eval.suite and eval.preset unless --suite and --preset say otherwise, results in RUN/eval/."""
    if not args.run:
        raise UserError("give a run folder (runs/NAME) or --model")
    run_dir = Path(args.run).resolve()  # the worker runs from the repository root
    if not (run_dir / "recipe.yaml").exists():
        raise UserError(f"{run_dir} is not a run folder (no recipe.yaml); train it with train.py first")
    from rsft.config import load_recipe
    from rsft.models import resolve_model_path

    recipe = load_recipe(run_dir / "recipe.yaml")
    model = recipe.model
    base = _abs_if_local(resolve_model_path(model.name_or_path))
    preset_name = args.preset or recipe.eval.preset
    folder = preset_name if args.limit is None else f"{preset_name}-limit{args.limit}"  # --limit: its own
    return Target(name=model.name_or_path, base=base, revision=model.revision, subfolder=args.subfolder,
                  trust_remote_code=model.trust_remote_code, jobs=tuple(models_of_run(run_dir, args.steps)),
                  suite=args.suite or recipe.eval.suite, preset_name=preset_name, out_root=run_dir / "eval" / folder,
                  run_dir=run_dir)


def models_of_run(run_dir: Path, steps: str | None):
    """[(step, adapter_or_None)] for the base (step 0) and each scheduled checkpoint, filtered by --steps."""
    from rsft.rundir import checkpoint_dirs

    found = {0: None}
    for ckpt in checkpoint_dirs(run_dir):
        found[json.loads((ckpt / "meta.json").read_text())["step"]] = ckpt
    if steps is None:
        return sorted(found.items())
    try:
        wanted = [int(s) for s in steps.split(",")]
    except ValueError:
        raise UserError(f"--steps must be comma-separated integers, got '{steps}'") from None
    missing = [s for s in wanted if s not in found]
    if missing:
        raise UserError(f"{run_dir} has no checkpoint for steps {missing}; it has {sorted(found)}")
    return [(s, found[s]) for s in wanted]


def _abs_if_local(path: str) -> str:
    """A local model folder as an absolute path (the worker runs from the repository root), checked to hold a
    model; anything else is a Hub id."""
    if not Path(path).exists():
        return path
    folder = Path(path).resolve()
    if not folder.is_dir() or not (folder / "config.json").exists():
        raise UserError(f"{path} is not a model folder (no config.json); give a folder written by save_pretrained, "
                        f"or a Hub id")
    return str(folder)


# ------------------------------------------------------------------------------------------------ how: the plan


@dataclass(frozen=True)
class Plan:
    """How a target is evaluated, settled before any model loads."""

    target: Target
    tasks: tuple[str, ...]  # the suite's tasks
    preset: Preset  # the target's preset, --limit applied
    data_dir: Path  # TASK/test.jsonl for each task
    backend: str  # hf | vllm
    device: str  # cuda | cpu
    dtype: str  # what the models are evaluated in (eval_dtype)
    batch_size: int  # hf backend: prompts per generate call
    tensor_parallel_size: int  # vLLM: GPUs per model
    judges: dict[str, str]  # role -> judge model, for the judge-scored tasks
    endpoint: str  # base URL for api: judges
    judge_only: bool  # generate nothing; judge what is generated


def make_plan(args, target: Target, backend: str, judges: dict[str, str]) -> Plan:
    """The suite's tasks and the preset (--limit applied), the model reachable (offline: now), the precision and
    batch size, the locally made tasks' data built."""
    import torch
    from dataclasses import replace

    from rsft.catalogue import preset, suite_tasks
    from rsft.offline import require
    from rsft.judges.phase import DEFAULT_ENDPOINT
    from rsft.task_data import ensure_local
    from rsft.tasks.datafile import eval_data_dir

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tasks, p = suite_tasks(target.suite), preset(target.preset_name)
    if not args.estimate:  # the plan needs no weights: a known model's shape is known offline
        require(target.base, target.revision, what="the model to evaluate",
                local="--model with a local folder")  # offline: now
    if args.limit is not None:
        if args.limit < 1:
            raise UserError(f"--limit must be at least 1, got {args.limit}")
        p = replace(p, limit=args.limit, in_domain_limit=None)
        print(f"--limit {args.limit}: results go to {target.out_root}" +
              ("" if target.run_dir is None else ", a folder of their own"), flush=True)
    batch_size = args.batch_size or (8 if device == "cuda" else CPU_BATCH)
    dtype, why = eval_dtype(device)
    print(f"precision: {dtype} ({why})", flush=True)
    data_dir = (Path(args.data_dir) if args.data_dir else eval_data_dir()).resolve()
    ensure_local(data_dir, tasks)
    return Plan(target=target, tasks=tuple(tasks), preset=p, data_dir=data_dir, backend=backend, device=device,
                dtype=dtype, batch_size=batch_size, tensor_parallel_size=args.tensor_parallel_size, judges=judges,
                endpoint=args.judge_endpoint or os.environ.get("OPENAI_BASE_URL") or DEFAULT_ENDPOINT,
                judge_only=args.judge_only)


def estimate(plan: Plan) -> int:
    """--estimate: the tokens to generate and the time, where a speed was measured; nothing runs."""
    from rsft.eval_planner import eval_plan_lines

    print("\n".join(eval_plan_lines(plan.tasks, plan.target.preset_name, len(plan.target.jobs),
                                    model=plan.target.name, backend=plan.backend, data_dir=plan.data_dir)))
    return 0


# ------------------------------------------------------------------------------------------------ the run


def run(plan: Plan) -> int:
    """Each model of the target in a fresh process, then the judge-scored tasks of them all in one more; each
    checkpoint's model card updated with its scores. Tasks without data are skipped with their reason."""
    target = plan.target
    tasks, no_data = tasks_with_data(plan)
    from rsft.rundir import check_writable

    check_writable(target.out_root)  # a read-only or full results folder: one line now, not a failed worker per step
    sandbox = code_sandbox(tasks)
    # every model's spec is built, hence validated, before the first model loads
    specs = worker_specs(plan, tasks, no_data, sandbox)
    failed = run_models(specs, target.preset_name, plan.backend, judge_only=plan.judge_only)
    judge_outputs([target.out_dir(step) for step, _ in target.jobs], tasks, plan.judges, plan.endpoint,
                  plan.batch_size, plan.device)
    if target.run_dir is not None:
        from rsft.hub import write_model_card

        for _, ckpt in target.jobs:  # each checkpoint's model card (README.md) now shows its scores beside the base's
            if ckpt is not None and (ckpt / "README.md").exists():
                write_model_card(ckpt)
    if failed:
        raise UserError(f"evaluation failed for steps {failed}; rerun the same command to retry them")
    print(f"results in {target.out_root}")
    return 0


def tasks_with_data(plan: Plan) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the plan's tasks whose data is there, {task: why not} for the others, each named on stderr); none: an error."""
    from rsft.task_data import missing

    no_data = missing(plan.data_dir, plan.tasks)
    for task, why in no_data.items():
        print(f"{task} skipped: {why}", file=sys.stderr)
    tasks = tuple(t for t in plan.tasks if t not in no_data)
    if not tasks:
        raise UserError("no task of the suite has its data; fetch it first (see above)")
    return tasks, no_data


def code_sandbox(tasks) -> str:
    """The sandbox's mechanism when a task will run model-written code (named now, or refused), else ""."""
    from rsft.tasks.common import answer_kind

    if not any(answer_kind(t) == "code" for t in tasks):
        return ""
    from rsft.sandbox import mechanism

    sandbox = mechanism()
    print(f"code tasks run in the sandbox: {sandbox}", flush=True)
    return sandbox


def worker_specs(plan: Plan, tasks, no_data: dict[str, str], sandbox: str) -> list[tuple[int, WorkerSpec | None]]:
    """[(step, the worker's spec, or None when every task of that model is generated already)], in job order; each
    model's folder records the tasks skipped for want of data."""
    from dataclasses import asdict

    from rsft.rundir import generated, record_skipped
    from rsft.specs import WorkerSpec

    target, specs = plan.target, []
    for step, adapter in target.jobs:
        out_dir = target.out_dir(step)
        if no_data:
            record_skipped(out_dir, no_data)
        todo = [] if plan.judge_only else [t for t in tasks if not generated(out_dir, t, asdict(plan.preset))]
        model = checkpoint_model(adapter, base=target.base, revision=target.revision, subfolder=target.subfolder,
                                 trust_remote_code=target.trust_remote_code, dtype=plan.dtype)
        specs.append((step, WorkerSpec(
            model=model, step=step, tasks=tuple(todo), preset_name=target.preset_name, preset=plan.preset,
            data_dir=str(plan.data_dir), out_dir=str(out_dir), backend=plan.backend, device=plan.device,
            batch_size=plan.batch_size, tensor_parallel_size=plan.tensor_parallel_size, sandbox=sandbox)
            if todo else None))
    return specs


def lora_rank(adapter: Path | None) -> int | None:
    if adapter is None:
        return None
    return json.loads((Path(adapter) / "adapter_config.json").read_text())["r"]


def checkpoint_model(ckpt: Path | None, **base):
    """The ModelSpec of one model to evaluate: the base (None), a LoRA checkpoint (its adapter on the base), or a
    full fine-tuning checkpoint (model.finetune: full), which is a whole model folder and is loaded as one."""
    from rsft.specs import ModelSpec

    if ckpt is not None and not (Path(ckpt) / "adapter_config.json").exists():
        if not (Path(ckpt) / "config.json").exists():
            raise UserError(f"{ckpt} holds neither a LoRA adapter (adapter_config.json) nor a model (config.json)")
        return ModelSpec(base=str(ckpt), trust_remote_code=base["trust_remote_code"], dtype=base["dtype"])
    return ModelSpec(**base, adapter=str(ckpt) if ckpt else None, lora_rank=lora_rank(ckpt))


def run_models(models: list, preset_name: str, backend: str, judge_only: bool) -> list[int]:
    """Each model, (step, its WorkerSpec or None when nothing is left to generate), in its own process, with
    progress, an ETA from the models done so far, and a line of scores per model. Returns the steps that failed."""
    import time

    failed, times = [], []
    todo = sum(1 for _, spec in models if spec)
    for i, (step, spec) in enumerate(models):
        head = f"[{i + 1}/{len(models)}] step {step}"
        if not spec:
            print(f"{head}: {'judging only' if judge_only else 'finished earlier, skipped'}", flush=True)
            continue
        print(f"{head}: {', '.join(spec.tasks)} ({preset_name} preset, {backend})", flush=True)
        start = time.monotonic()
        try:
            ok = run_one(spec)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted at step {step}, task {_current_task(spec)}; rerun the same command to "
                              "resume") from None
        times.append(time.monotonic() - start)
        left = todo - len(times)
        eta = f"; about {_minutes(left * sum(times) / len(times))} left for {left} more" if left else ""
        if ok:
            print(f"{head} done in {_minutes(times[-1])}{eta}: {score_line(Path(spec.out_dir), spec.tasks)}",
                  flush=True)
        else:
            failed.append(step)
            print(f"step {step} failed; its finished tasks are kept, rerun to retry{eta}", file=sys.stderr)
    return failed


def _current_task(spec) -> str:
    """The task a stopped worker was on: the first of its tasks without a result (the worker runs them in order)."""
    from rsft.rundir import gen_path, result_path

    out = Path(spec.out_dir)
    return next((t for t in spec.tasks if not (result_path(out, t).exists() or gen_path(out, t).exists())),
                spec.tasks[-1])


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def judge_outputs(out_dirs: list[Path], tasks, judges: dict, endpoint: str, batch_size: int, device: str) -> None:
    """Phase 2: the judge-scored tasks of every model, in one fresh process (each judge model loaded once)."""
    from rsft.judges.phase import needs_judging
    from rsft.rundir import result_path
    from rsft.specs import JudgeSpec

    todo = [d for d in out_dirs if any(needs_judging(d, t, judges, endpoint) for t in tasks)]
    if not todo:
        return
    print(f"judging {len(todo)} model(s): {', '.join(f'{r}={m}' for r, m in judges.items())}", flush=True)
    spec = JudgeSpec(out_dirs=tuple(str(d) for d in todo), tasks=tuple(tasks), judges=judges, endpoint=endpoint,
                     device=device, batch_size=batch_size)
    try:
        ok = run_one(spec, "rsft.judges")
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while judging {len(todo)} model(s); finished judgments are kept, rerun the "
                          "same command to resume") from None
    incomplete = [f"{d.name}/{t}" for d in todo for t in tasks if needs_judging(d, t, judges, endpoint)
                  and result_path(d, t).exists()]
    if incomplete:
        raise UserError(f"samples left unjudged in {', '.join(incomplete)} (TASK.json: judging.unjudged_samples, "
                        f"with reasons); finished judgments are kept, rerun the same command to ask the judges again")
    if not ok:
        raise UserError("judging failed; generated samples and finished judgments are kept, rerun to continue")


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a scheduler, `kill`) stops the evaluation as Ctrl-C does


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    run_cli(main)
