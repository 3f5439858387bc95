"""Training data: load rows, adapt the paper's schemas, apply the chat template, tokenize (batched, cached).

Every example becomes  prompt_ids + response_ids + [EOS]  with the loss on response_ids + EOS only, built the
paper's way (PAPER.md section 2): the prompt is the tokenizer's chat template over the user turn with
`add_generation_prompt=True` (even for base models, no system prompt added by us), the target is the teacher
response verbatim. Prompt and response are tokenized separately, so no template's assistant mask is relied on.

One module of ~410 lines on purpose: the data pipeline in its order (rows, schemas, chat template, tokens, length
policy, micro-batches), each row rule next to the next.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsft.config import DataConfig
from rsft.prompts import MATH_PROMPT_SUFFIX
from rsft.cache import cache_root
from rsft.errors import NotLocal, UserError
from rsft.rundir import write_failed

CACHE_VERSION = 2  # bump when the tokenized layout or the prompt building changes
EMBEDDED_COUNTDOWN = "embedded:countdown"


# ------------------------------------------------------------------------------------------------ loading rows


class BadLine:
    """A .jsonl line that could not be read as a row: kept in its place so that it is reported like a bad row."""

    def __init__(self, reason: str):
        self.reason = reason


def _read_jsonl(path: Path) -> list:
    rows = []
    with path.open("rb") as f:
        for i, raw in enumerate(f):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                rows.append(BadLine(f"line {i + 1} is not UTF-8 (byte offset {e.start} in the line)"))
                continue
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                rows.append(BadLine(f"line {i + 1} is not valid JSON ({e.msg})"))
            except RecursionError:
                rows.append(BadLine(f"line {i + 1} is nested too deeply"))
    return rows


def _read_local(path: Path) -> list:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise UserError(f"{path}: not a readable parquet file ({first})") from None
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        try:
            rows = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte offset {e.start})") from None
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        except RecursionError:
            raise UserError(f"{path}: nested too deeply to be a list of rows") from None
        if not isinstance(rows, list):
            raise UserError(f"{path}: a .json data file must hold a list of rows")
        return rows
    raise UserError(f"{path}: unsupported data file type '{suffix}' (use .jsonl, .json or .parquet)")


def _read_hub(cfg: DataConfig) -> tuple[list, str]:
    from rsft.offline import offline_reason

    offline = offline_reason()  # unreachable: datasets reads its caches only, at once, instead of retrying
    import datasets

    try:
        ds = datasets.load_dataset(cfg.path, revision=cfg.revision, split=cfg.split)
    except (ConnectionError, OSError) as e:
        rev = f" --revision {cfg.revision}" if cfg.revision else ""
        why = f"the Hub cannot be reached ({offline}) and it is not cached" if offline else type(e).__name__
        raise (NotLocal if offline else UserError)(
            f"could not load dataset '{cfg.path}': {why}; run `hf download {cfg.path} --repo-type dataset{rev}` "
            "where the Hub can be reached, or set data.path to a local .parquet/.jsonl file"
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
            if not path.is_file():  # a FIFO would block forever, a link to /dev/zero read until memory runs out
                raise UserError(f"{path}: not a regular file (a folder, FIFO or device); set data.path to a "
                                ".jsonl, .json or .parquet file")
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


ROLES = ("system", "user", "assistant")


def _check_turns(turns, field: str) -> None:
    """A chat: a list of {role, content} turns, roles known, contents strings."""
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"field '{field}' must be a non-empty list of {{role, content}} turns, "
                         f"got {type(turns).__name__}")
    for j, m in enumerate(turns):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ValueError(f"{field}[{j}] must be a {{role, content}} turn with string content")
        if m.get("role") not in ROLES:
            raise ValueError(f"{field}[{j}] has role {m.get('role')!r}, not one of {', '.join(ROLES)}")


def _check_prompt(turns: list, field: str) -> None:
    """The prompt ends with the user's turn: the template then opens the assistant's turn, the target."""
    if turns[-1]["role"] != "user":
        raise ValueError(f"the prompt in '{field}' must end with a user turn, not the {turns[-1]['role']}'s")
    if not turns[-1]["content"].strip():
        raise ValueError(f"the user turn in '{field}' is empty")


def _paper_row(row: dict) -> tuple[list, str]:
    """jasonrqh/*-20k rows: `message` (the chat: one user turn), else `prompt` (its text), else `question` + the
    paper's instruction; the target is `response`."""
    if row.get("message") is not None:
        field, prompt = "message", row["message"]
        _check_turns(prompt, field)
    elif row.get("prompt") is not None:
        field, prompt = "prompt", row["prompt"]
        if not isinstance(prompt, str):
            raise ValueError(f"field 'prompt' must be a string, got {type(prompt).__name__}")
        prompt = [{"role": "user", "content": prompt}]
    elif row.get("question") is not None:
        field, prompt = "question", row["question"]
        if not isinstance(prompt, str):
            raise ValueError(f"field 'question' must be a string, got {type(prompt).__name__}")
        if not prompt.strip():
            raise ValueError("field 'question' is empty")
        prompt = [{"role": "user", "content": prompt + MATH_PROMPT_SUFFIX}]
    else:
        raise ValueError("missing field: one of 'message', 'prompt' or 'question' is needed")
    _check_prompt(prompt, field)
    if "response" not in row:
        raise ValueError("missing field 'response'")
    response = row["response"]
    if not isinstance(response, str):
        raise ValueError(f"field 'response' must be a string, got {type(response).__name__}")
    return prompt, response


def _messages_row(row: dict) -> tuple[list, str]:
    """Plain chat rows: `messages` = [..., {"role": "user", ...}, {"role": "assistant", "content": target}]."""
    if "messages" not in row:
        raise ValueError("missing field 'messages'")
    msgs = row["messages"]
    _check_turns(msgs, "messages")
    if msgs[-1]["role"] != "assistant":
        raise ValueError("the last turn of 'messages' must be the assistant's (the training target)")
    if len(msgs) < 2 or not any(m["role"] == "user" for m in msgs[:-1]):
        raise ValueError("'messages' has no user turn before the assistant's")
    _check_prompt(msgs[:-1], "messages")
    return msgs[:-1], msgs[-1]["content"]


SHOWN_BAD_ROWS = 20  # bad rows named in an error or in data_stats.json; all are counted


def _bad_rows_line(skipped: list[dict]) -> str:
    shown = "; ".join(f"row {s['row']}: {s['reason']}" for s in skipped[:SHOWN_BAD_ROWS])
    more = f"; ... and {len(skipped) - SHOWN_BAD_ROWS} more" if len(skipped) > SHOWN_BAD_ROWS else ""
    return shown + more


def adapt_rows(rows: list, cfg: DataConfig) -> tuple[list, list, list[dict]]:
    """(prompts, responses, skipped), skipped = [{row, reason}], rows numbered from 0 in file order. Every row is
    checked; under on_bad_row: error one error names them all (the first 20 and the count)."""
    schema = cfg.schema
    if schema == "auto":
        first = next((r for r in rows if isinstance(r, dict)), {})
        schema = "messages" if "messages" in first else "paper"
    adapt = _messages_row if schema == "messages" else _paper_row
    prompts, responses, skipped = [], [], []
    for i, row in enumerate(rows):
        try:
            if isinstance(row, BadLine):
                raise ValueError(row.reason)
            if not isinstance(row, dict):
                raise ValueError(f"a row must be an object, got {type(row).__name__}")
            prompt, response = adapt(row)
            if not response.strip():
                raise ValueError("empty response")
        except ValueError as e:
            skipped.append({"row": i, "reason": str(e)})
            continue
        prompts.append(prompt)
        responses.append(response)
    if skipped and cfg.on_bad_row == "error":
        raise UserError(f"{cfg.path}: {len(skipped)} of {len(rows)} rows do not fit the {schema} schema (rows "
                        f"numbered from 0): {_bad_rows_line(skipped)}; fix them or set data.on_bad_row: skip")
    return prompts, responses, skipped


def report_skipped(cfg: DataConfig, rows: int, skipped: list[dict]) -> None:
    """One line on what data.on_bad_row: skip left out, printed before anything can stop on too few rows."""
    if skipped and os.environ.get("RANK", "0") == "0":
        print(f"data: skipped {len(skipped)} of {rows} rows of {cfg.path} (data.on_bad_row: skip): "
              f"{_bad_rows_line(skipped)}")


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
        tok = Tokenized(z["ids"], z["offsets"], z["prompt_lens"], json.loads(str(z["skipped"])))
        report_skipped(cfg, len(rows), tok.skipped)
        return tok
    prompts, responses, skipped = adapt_rows(rows, cfg)
    report_skipped(cfg, len(rows), skipped)
    if not prompts:
        raise UserError(f"{cfg.path}: no usable rows: all {len(rows)} were skipped as malformed"
                        if rows else f"{cfg.path}: holds no rows")
    tok = tokenize(prompts, responses, tokenizer, skipped)
    tmp = path.with_suffix(".tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, ids=tok.ids, offsets=tok.offsets, prompt_lens=tok.prompt_lens, skipped=json.dumps(skipped))
        os.replace(tmp, path)
    except OSError as e:  # a full or read-only $RSFT_CACHE costs the next run its tokenizing, nothing else
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        print(f"warning: tokenized data not cached ({write_failed(path, e)})", file=sys.stderr, flush=True)
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
        "skipped_rows": tok.skipped[:SHOWN_BAD_ROWS],
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
