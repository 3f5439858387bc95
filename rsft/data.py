"""Training data: load rows, adapt the paper's schemas, apply the chat template, tokenize (batched, cached).

Every example becomes  prompt_ids + response_ids + [EOS]  with the loss on response_ids + EOS only, built the
paper's way (PAPER.md section 2): the prompt is the tokenizer's chat template over the user turn with
`add_generation_prompt=True` (even for base models, no system prompt added by us), the target is the teacher
response verbatim. Prompt and response are tokenized separately, so no template's assistant mask is relied on.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsft.config import DataConfig
from rsft.prompts import MATH_PROMPT_SUFFIX
from rsft.errors import UserError

CACHE_VERSION = 1  # bump when the tokenized layout or the prompt building changes
EMBEDDED_COUNTDOWN = "embedded:countdown"


def cache_root() -> Path:
    return Path(os.environ.get("RSFT_CACHE", Path.home() / ".cache" / "rsft"))


# ------------------------------------------------------------------------------------------------ loading rows


def _read_local(path: Path) -> list:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if suffix == ".jsonl":
        rows = []
        with path.open() as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}: line {i + 1} is not valid JSON ({e.msg})") from None
        return rows
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(rows, list):
            raise UserError(f"{path}: a .json data file must hold a list of rows")
        return rows
    raise UserError(f"{path}: unsupported data file type '{suffix}' (use .jsonl, .json or .parquet)")


def _read_hub(cfg: DataConfig) -> tuple[list, str]:
    import datasets

    try:
        ds = datasets.load_dataset(cfg.path, revision=cfg.revision, split=cfg.split)
    except (ConnectionError, OSError) as e:
        raise UserError(
            f"could not load dataset '{cfg.path}' from the Hub ({type(e).__name__}); offline? "
            "Download it once and set data.path to the local .parquet/.jsonl file"
        ) from None
    except ValueError as e:  # e.g. unknown split
        raise UserError(f"dataset '{cfg.path}': {e}") from None
    return ds.to_list(), ds._fingerprint


def load_rows(cfg: DataConfig) -> tuple[list, str]:
    """The raw rows (first `limit` only) and a string that changes whenever their content may have changed."""
    if cfg.path == EMBEDDED_COUNTDOWN:
        from rsft.countdown import make_dataset

        rows = make_dataset(cfg.num_examples, seed=cfg.seed)
        ident = "embedded-countdown:" + hashlib.sha256(json.dumps(rows).encode()).hexdigest()  # the generator's output
    else:
        path = Path(cfg.path).expanduser()
        if path.exists():
            st = path.stat()
            rows = _read_local(path)
            ident = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
        elif path.suffix.lower() in (".jsonl", ".json", ".parquet") or cfg.path.startswith((".", "/", "~")):
            raise UserError(f"data file not found: {cfg.path}")
        else:
            rows, ident = _read_hub(cfg)
    if cfg.limit is not None:
        rows = rows[: cfg.limit]
    return rows, f"{ident}:limit={cfg.limit}"


# ------------------------------------------------------------------------------------------------ schemas


def _is_turn(m) -> bool:
    return isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)


def _paper_row(row: dict) -> tuple[list, str]:
    """jasonrqh/*-20k rows: `message` (one user turn), else `prompt`, else `question` + the paper's suffix."""
    if row.get("message") is not None:
        prompt = row["message"]
    elif row.get("prompt") is not None:
        prompt = row["prompt"]
    elif row.get("question") is not None:
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise ValueError("field 'question' must be a non-empty string")
        prompt = row["question"] + MATH_PROMPT_SUFFIX
    else:
        raise ValueError("missing field: one of 'message', 'prompt' or 'question' is needed")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt or not all(_is_turn(m) for m in prompt):
        raise ValueError("the prompt must be a string or a list of {role, content} turns")
    if "response" not in row:
        raise ValueError("missing field 'response'")
    response = row["response"]
    if not isinstance(response, str):
        raise ValueError(f"field 'response' must be a string, got {type(response).__name__}")
    return prompt, response


def _messages_row(row: dict) -> tuple[list, str]:
    """Plain chat rows: `messages` = [..., {"role": "assistant", "content": target}]."""
    msgs = row.get("messages")
    if not isinstance(msgs, list) or len(msgs) < 2 or not all(_is_turn(m) for m in msgs):
        raise ValueError("field 'messages' must be a list of at least two {role, content} turns")
    if msgs[-1]["role"] != "assistant":
        raise ValueError("the last turn of 'messages' must be the assistant's (the training target)")
    return msgs[:-1], msgs[-1]["content"]


def adapt_rows(rows: list, cfg: DataConfig) -> tuple[list, list, list[dict]]:
    """(prompts, responses, skipped) where skipped = [{row, reason}]; raises on the first bad row unless skip."""
    schema = cfg.schema
    if schema == "auto":
        schema = "messages" if rows and isinstance(rows[0], dict) and "messages" in rows[0] else "paper"
    adapt = _messages_row if schema == "messages" else _paper_row
    prompts, responses, skipped = [], [], []
    for i, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise ValueError(f"a row must be an object, got {type(row).__name__}")
            prompt, response = adapt(row)
            if not response.strip():
                raise ValueError("empty response")
        except ValueError as e:
            if cfg.on_bad_row == "error":
                raise UserError(
                    f"{cfg.path}: row {i} is malformed ({e}); fix it or set data.on_bad_row: skip"
                ) from None
            skipped.append({"row": i, "reason": str(e)})
            continue
        prompts.append(prompt)
        responses.append(response)
    return prompts, responses, skipped


# ------------------------------------------------------------------------------------------------ tokenizing


@dataclass
class Tokenized:
    """Every kept example as one flat token array: example i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray  # int32, all examples concatenated (prompt + response + EOS, before the length policy)
    offsets: np.ndarray  # int64, len n+1
    prompt_lens: np.ndarray  # int64, len n
    skipped: list = field(default_factory=list)  # malformed rows skipped: [{row, reason}]

    def __len__(self) -> int:
        return len(self.prompt_lens)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update(backend.to_str().encode() if backend is not None else str(tokenizer.get_vocab()).encode())
    h.update(str(tokenizer.chat_template).encode())
    h.update(str(tokenizer.eos_token_id).encode())
    return h.hexdigest()[:16]


def _encode(tokenizer, texts: list[str], desc: str, chunk: int = 1024) -> list[list[int]]:
    from tqdm.auto import tqdm

    out: list[list[int]] = []
    for start in tqdm(range(0, len(texts), chunk), desc=desc, unit="chunk", disable=len(texts) <= chunk):
        enc = tokenizer(texts[start : start + chunk], add_special_tokens=False, return_attention_mask=False)
        out.extend(enc["input_ids"])
    return out


def tokenize(prompts: list, responses: list, tokenizer, skipped: list | None = None) -> Tokenized:
    """Batched: the chat template renders all prompts to text, then the fast tokenizer encodes in chunks."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError("the tokenizer has no EOS token; the paper's target ends with the tokenizer's EOS")
    prompt_texts = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=False)
    p_ids = _encode(tokenizer, prompt_texts, "tokenizing prompts")
    r_ids = _encode(tokenizer, responses, "tokenizing responses")
    p_len = np.fromiter((len(p) for p in p_ids), dtype=np.int64, count=len(p_ids))
    r_len = np.fromiter((len(r) + 1 for r in r_ids), dtype=np.int64, count=len(r_ids))
    offsets = np.zeros(len(p_ids) + 1, dtype=np.int64)
    np.cumsum(p_len + r_len, out=offsets[1:])
    ids = np.empty(offsets[-1], dtype=np.int32)
    for i, (p, r) in enumerate(zip(p_ids, r_ids)):
        a, b = offsets[i], offsets[i] + len(p)
        ids[a:b] = p
        ids[b : b + len(r)] = r
        ids[offsets[i + 1] - 1] = eos
    return Tokenized(ids=ids, offsets=offsets, prompt_lens=p_len, skipped=list(skipped or []))


def load_tokenized(cfg: DataConfig, tokenizer, tokenizer_id: str) -> Tokenized:
    """Rows -> Tokenized, cached under $RSFT_CACHE/tokens keyed by data content, schema and tokenizer."""
    rows, data_ident = load_rows(cfg)
    key = hashlib.sha256(
        f"v{CACHE_VERSION}|{data_ident}|{cfg.schema}|{cfg.on_bad_row}|{tokenizer_id}|"
        f"{tokenizer_fingerprint(tokenizer)}".encode()
    ).hexdigest()[:24]
    path = cache_root() / "tokens" / f"{key}.npz"
    if path.exists():
        z = np.load(path)
        return Tokenized(z["ids"], z["offsets"], z["prompt_lens"], json.loads(str(z["skipped"])))
    prompts, responses, skipped = adapt_rows(rows, cfg)
    if not prompts:
        raise UserError(f"{cfg.path}: no usable rows ({len(skipped)} malformed)")
    tok = tokenize(prompts, responses, tokenizer, skipped)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=tok.ids, offsets=tok.offsets, prompt_lens=tok.prompt_lens, skipped=json.dumps(skipped))
    os.replace(tmp, path)
    return tok


# ------------------------------------------------------------------------------------------------ length policy


@dataclass(frozen=True)
class Example:
    input_ids: np.ndarray
    prompt_len: int


@dataclass
class TrainSet:
    """The examples a run trains on, in fixed order, after the over-length policy."""

    examples: list
    stats: dict

    def __len__(self) -> int:
        return len(self.examples)


def apply_length_policy(tok: Tokenized, cfg: DataConfig) -> TrainSet:
    lengths = tok.lengths()
    over = np.flatnonzero(lengths > cfg.max_length)
    prompt_over = np.flatnonzero(tok.prompt_lens >= cfg.max_length)
    if cfg.over_length == "error" and len(over):
        i = int(over[0])
        raise UserError(
            f"{cfg.path}: {len(over)} rows exceed data.max_length={cfg.max_length} (first: example {i}, "
            f"{int(lengths[i])} tokens); raise max_length or set data.over_length to truncate or drop"
        )
    if cfg.over_length == "truncate" and len(prompt_over):
        i = int(prompt_over[0])
        raise UserError(
            f"{cfg.path}: {len(prompt_over)} prompts alone reach data.max_length={cfg.max_length} (first: example "
            f"{i}, prompt {int(tok.prompt_lens[i])} tokens) and would leave nothing to learn; "
            "raise max_length or set data.over_length: drop"
        )
    dropped = set(over.tolist()) if cfg.over_length == "drop" else set()
    examples = []
    for i in range(len(tok)):
        if i in dropped:
            continue
        a, b = tok.offsets[i], tok.offsets[i + 1]
        b = min(b, a + cfg.max_length)
        examples.append(Example(tok.ids[a:b], int(tok.prompt_lens[i])))
    kept = np.array([len(e.input_ids) for e in examples], dtype=np.int64)
    stats = {
        "rows": len(tok) + len(tok.skipped),
        "malformed_skipped": len(tok.skipped),
        "skipped_rows": tok.skipped[:20],
        "tokens_p50": int(np.percentile(lengths, 50)),
        "tokens_p90": int(np.percentile(lengths, 90)),
        "tokens_p99": int(np.percentile(lengths, 99)),
        "tokens_max": int(lengths.max()),
        "over_max_length": len(over),
        "over_length_policy": cfg.over_length,
        "truncated": len(over) if cfg.over_length == "truncate" else 0,
        "dropped": len(dropped),
        "kept": len(examples),
        "kept_tokens": int(kept.sum()) if len(kept) else 0,
        "supervised_tokens": int(sum(len(e.input_ids) - e.prompt_len for e in examples)),
    }
    if not examples:
        raise UserError(f"{cfg.path}: every row was dropped by data.over_length=drop (max_length {cfg.max_length})")
    return TrainSet(examples, stats)


def collate(examples: list, pad_id: int):
    """Right-pad a micro-batch to its longest example; labels are -100 on prompt and padding."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for j, e in enumerate(examples):
        n = len(e.input_ids)
        row = torch.from_numpy(e.input_ids.astype(np.int64))
        ids[j, :n] = row
        labels[j, e.prompt_len : n] = row[e.prompt_len :]
        mask[j, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
