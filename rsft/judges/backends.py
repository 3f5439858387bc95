"""Judge backends: a local HF model (chat rubric judge, yes/no LM, reward classifier) or an OpenAI-compatible API,
each refused with a reason (JudgeUnavailable) instead of crashing the phase: no key, too large for the card, not a
chat model. The API key is read from the environment, kept in memory and never written anywhere."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from rsft.judges.rubrics import render

API_KEY_ENV = "OPENAI_API_KEY"
API_MAX_TOKENS = 4096  # the paper's GPT-4.1 call: temperature 0, max_tokens 4096
API_WORKERS = 8  # concurrent requests (the paper used 10)
API_RETRIES = 5  # per sample, by the openai client, on 408/409/429/5xx and lost connections: it waits what the
# server's Retry-After says (up to 120 s), else 0.5, 1, 2, 4, 8 s; other 4xx fail at once. 5 failing samples in
# a row (API_STOP_AFTER) stop the asking for this run
API_STOP_AFTER = 5
API_TIMEOUT_S = 300
LOCAL_RUBRIC_MAX_NEW_TOKENS = 1024  # a local rubric judge writes "#thereason: ... #thescore: N" greedily
YESNO_MAX_NEW_TOKENS = 16  # the paper's TruthfulQA judges: greedy, 16 tokens, "yes" counts
MAX_ANSWER_TOKENS = 16384  # answers are clipped to this many judge tokens (the paper: 16,384 for HEx-PHI)
MEMORY_MARGIN = 1.2  # weights x 1.2 for activations and buffers: an 8B judge in bf16 = 16 GB -> 19.2 GB,
# plus, for a judge that generates, the KV cache of one batch of its longest prompts (see check_fits)


class JudgeUnavailable(Exception):
    """A judge that cannot be asked now; its samples stay unjudged with this reason and are retried next run."""


def public_endpoint(url: str) -> str:
    """The endpoint as it may be written to results: no user:password@ and no query (an api-key= there)."""
    p = urlsplit(url)
    host = p.hostname or ""
    return urlunsplit((p.scheme, f"{host}:{p.port}" if p.port else host, p.path, "", ""))


def split_endpoint(url: str) -> tuple[str, dict[str, str]]:
    """(base URL, query parameters): `https://host/v1?api-version=2024-06-01` (Azure style) is asked at
    `https://host/v1/chat/completions?api-version=2024-06-01`, the query kept on every request."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, p.path, "", "")), dict(parse_qsl(p.query, keep_blank_values=True))


def free_memory(device: str) -> int | None:
    """Bytes free on the device the judge would load on (None when unknown)."""
    if device == "cuda":
        import torch

        return torch.cuda.mem_get_info()[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def kv_cache_bytes(config, batch: int, tokens: int, element: int) -> int:
    """Keys and values of every layer for `batch` sequences of `tokens` tokens."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * batch * tokens * element


def check_fits(model: str, config, model_cls, dtype, device: str, batch: int = 0, tokens: int = 0) -> None:
    """Refuse, before loading, a judge that will not fit: its weights (parameters counted on the meta device) and,
    when it generates, the KV cache of a batch of `batch` prompts of up to `tokens` tokens."""
    import torch

    with torch.device("meta"):
        n = sum(p.numel() for p in model_cls.from_config(config).parameters())
    element = torch.tensor([], dtype=dtype).element_size()
    weights = n * element * MEMORY_MARGIN
    kv = kv_cache_bytes(config, batch, tokens, element) if batch else 0
    need, free = weights + kv, free_memory(device)
    if free is not None and need > free:
        raise JudgeUnavailable(
            f"too large for this {device}: {n / 1e9:.3g}B parameters need about {weights / 2**30:.3g} GiB in "
            f"{str(dtype).replace('torch.', '')} (weights x {MEMORY_MARGIN}), plus {kv / 2**30:.3g} GiB of KV cache "
            f"for {batch} prompts of up to {tokens:,} tokens, and {free / 2**30:.3g} GiB is free; pick a smaller "
            f"judge with --judge ROLE=MODEL, a smaller --batch-size, or a larger card")


class LocalJudge:
    """An HF model on this machine: a chat model (rubric), a plain LM (yes/no) or a sequence classifier (reward)."""

    def __init__(self, role: str, model: str, device: str, batch_size: int):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        from rsft.errors import UserError
        from rsft.offline import require

        try:  # offline and not cached: refused in seconds, not after the Hub's retry loop
            require(model, what=f"the {role} judge", local="--judge ROLE=LOCAL_FOLDER")
        except UserError as e:
            raise JudgeUnavailable(str(e)) from None
        try:
            config = AutoConfig.from_pretrained(model)
        except (OSError, ValueError) as e:
            raise JudgeUnavailable(f"cannot read {model} ({type(e).__name__}: {str(e).splitlines()[0]})") from None
        self.role, self.device, self.batch_size = role, device, batch_size
        self.chat = role in ("rubric", "reward")  # the yes/no judges read a plain "Q: ...\nA: ...\nTrue:"
        cls = AutoModelForSequenceClassification if role == "reward" else AutoModelForCausalLM
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        max_new = {"rubric": LOCAL_RUBRIC_MAX_NEW_TOKENS, "reward": 0}.get(role, YESNO_MAX_NEW_TOKENS)
        longest = min(getattr(config, "max_position_embeddings", None) or 4096, MAX_ANSWER_TOKENS + 1024 + max_new)
        check_fits(model, config, cls, dtype, device, batch=batch_size if role != "reward" else 0, tokens=longest)
        print(f"loading the {role} judge {model} on {device}", flush=True)
        self.tok = AutoTokenizer.from_pretrained(model)
        if self.chat and not self.tok.chat_template:
            raise JudgeUnavailable(f"{model} has no chat template; the {role} judge must be a chat model")
        self.model = cls.from_pretrained(model, dtype=dtype).to(device).eval()
        self.max_new = max_new
        self.context = getattr(config, "max_position_embeddings", None) or 4096
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.tok.padding_side = "left"

    def _encode(self, texts: list[str]):
        # a chat template writes its own special tokens (Llama-3's BOS included); a plain prompt gets the BOS
        return self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=not self.chat).to(self.device)

    def _clip(self, prompt: str, instruction: str, answer: str) -> str:
        """The answer cut to what fits the judge's context (and to MAX_ANSWER_TOKENS); the rest of the prompt stays."""
        overhead = self._encode([self._text(render(prompt, instruction, ""))])["input_ids"].shape[1]
        budget = max(0, min(MAX_ANSWER_TOKENS, self.context - self.max_new - overhead - 8))
        ids = self.tok(answer, add_special_tokens=False)["input_ids"]
        return answer if len(ids) <= budget else self.tok.decode(ids[:budget])

    def _text(self, rendered) -> str:
        if not self.chat:
            return rendered
        chat = rendered if isinstance(rendered, list) else [{"role": "user", "content": rendered}]
        return self.tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=self.role == "rubric")

    def run(self, payloads: list[tuple], on_done) -> None:
        import torch

        texts = [self._text(render(p, q, self._clip(p, q, a))) for p, q, a in payloads]
        with torch.no_grad():
            if self.role == "reward":  # one at a time, as the paper's pipeline (batch_size 1): no padding effects
                for i, text in enumerate(texts):
                    enc = self._encode([text])
                    on_done(i, repr(self.model(**enc).logits[0, 0].float().item()), None)
                return
            for start in range(0, len(texts), self.batch_size):
                enc = self._encode(texts[start:start + self.batch_size])
                out = self.model.generate(**enc, do_sample=False, max_new_tokens=self.max_new,
                                          pad_token_id=self.tok.pad_token_id)
                for j, row in enumerate(out[:, enc["input_ids"].shape[1]:]):
                    on_done(start + j, self.tok.decode(row, skip_special_tokens=True), None)

    def close(self) -> None:
        import gc

        import torch

        del self.model
        gc.collect()
        if self.device == "cuda":
            torch.cuda.empty_cache()


class ApiJudge:
    """A rubric judge behind an OpenAI-compatible /chat/completions endpoint, through the openai client (its retries
    honour Retry-After); the key stays in memory."""

    def __init__(self, model: str, endpoint: str):
        key = os.environ.get(API_KEY_ENV)
        if not key:
            raise JudgeUnavailable(f"{API_KEY_ENV} is not set: export it for {model} at "
                                   f"{public_endpoint(endpoint)}, or judge locally with --judge rubric=MODEL")
        import openai

        base, query = split_endpoint(endpoint)
        self.errors = (openai.APIError, AttributeError, IndexError, TypeError, ValueError)  # a reply not as expected
        self.client = openai.OpenAI(api_key=key, base_url=base, default_query=query or None, max_retries=API_RETRIES,
                                    timeout=API_TIMEOUT_S)
        self.model, self.shown_url = model, public_endpoint(base.rstrip("/") + "/chat/completions")
        self.lock, self.failures_in_a_row, self.failing = threading.Lock(), 0, None

    def _ask(self, text: str) -> tuple[str | None, str | None]:
        if self.failing:
            return None, self.failing
        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": text}], temperature=0,
                max_tokens=API_MAX_TOKENS)
            answer = reply.choices[0].message.content or ""
        except self.errors as e:
            why = f"{type(e).__name__}: {e}"  # cut short by the phase, after the key is scrubbed from it
            with self.lock:
                self.failures_in_a_row += 1
                if self.failures_in_a_row >= API_STOP_AFTER and not self.failing:
                    self.failing = (f"endpoint {self.shown_url} failed {API_STOP_AFTER} samples in a row, not asked "
                                    f"again this run ({why})")
            return None, f"endpoint error at {self.shown_url} ({why})"
        with self.lock:
            self.failures_in_a_row = 0
        return answer, None

    def run(self, payloads: list[tuple], on_done) -> None:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        with ThreadPoolExecutor(API_WORKERS) as pool:
            futures = {pool.submit(self._ask, render(p, q, a)): i for i, (p, q, a) in enumerate(payloads)}
            for f in as_completed(futures):
                on_done(futures[f], *f.result())

    def close(self) -> None:
        self.client.close()


def load_judge(role: str, model: str, endpoint: str, device: str, batch_size: int):
    if model.startswith("api:"):
        return ApiJudge(model[len("api:"):], endpoint)
    return LocalJudge(role, model, device, batch_size)
