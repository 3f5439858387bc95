"""Sampling for transformers' generate on CPU: the same distribution as its own, without its two slow steps.

transformers samples a token by sorting the whole vocabulary for top-p and drawing with `torch.multinomial`; for a
batch of 64 over SmolLM2's 49,152 tokens on 2 CPU cores that is 44 + 100 ms of a 467 ms step (cProfile; greedy
286 ms; bench/RESULTS.md). `NucleusSample` gives each token the same probability: temperature, then top-k if
asked, then top-p read off the 64 most likely tokens (exact whenever they hold p of the mass, else the full sort,
as transformers does it), then one draw by the Gumbel-max rule (the argmax of log-probabilities plus Gumbel noise
is a draw from their softmax), among those 64 when top-p left no other. It returns scores whose only finite
entry is the drawn token, so generate runs with `do_sample=False` and its argmax picks that token. Only the task's
and preset's sampling settings are read, not a model's generation_config (transformers' own sampling would add,
say, a top_k written there); its other processors (repetition penalty, minimum length) still run, before this one.

The noise is keyed to the question, not drawn from one generator: the uniform behind token t at step s of a
question's reply is a hash of (the question's key, s, t), or, when the row is drawn over the whole vocabulary,
comes from a generator seeded by (key, s); a question's key hashes the seed, its prompt tokens and which repeat of
that prompt it is (`question_keys`). So a question's sample does not depend on which other questions share its
batch, or on the batch size: the same seed gives the same replies at any `--batch-size` (up to the float rounding
of other batch shapes, which can tip a draw that sits at a boundary). It also gives every checkpoint the same
noise for the same question and step, as long as the row's nucleus takes the same way (its top 64, or the whole
vocabulary) at both, so that step-to-step differences are more the model's than the draw's.
"""
from __future__ import annotations

import hashlib
from collections import Counter

TOP = 64  # tokens read for top-p before falling back to sorting the vocabulary
_M32 = 0xFFFFFFFF


def question_keys(context, attention_mask, seed: int, seen: Counter):
    """One 32-bit key per row of a left-padded batch: a hash of the seed, the row's prompt tokens (those under
    the attention mask) and how many times that prompt was keyed before (`seen`, counted over a model's whole
    evaluation, so the k repeats of an avg@k question draw k different replies)."""
    import torch

    keys = []
    for ids, mask in zip(context.tolist(), attention_mask.tolist()):
        prompt = tuple(t for t, m in zip(ids, mask) if m)
        seen[prompt] += 1
        text = f"{seed}|{seen[prompt] - 1}|{','.join(map(str, prompt))}".encode()
        keys.append(int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "little"))
    return torch.tensor(keys, dtype=torch.int64)


def _mul32(x, c: int):
    """x * c mod 2**32 for int64 tensors x in [0, 2**32): in 16-bit halves, so that no product overflows int64."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _mix(x):
    """A 32-bit integer hash (the lowbias32 constants): every input bit flips each output bit about half the time."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _row_hash(keys, step: int):
    """One 32-bit hash of (key, step) per row."""
    import torch

    return _mix((keys + _mul32(torch.tensor(step + 1), 0x9E3779B9)) & _M32)


def keyed_uniform(keys, step: int, ids):
    """Uniform draws in (0, 1), one per entry of ids ([rows, n] token ids), as a function of (key, step, token)
    only: 23 bits of a hash, centred in their interval, so every value is a float32 strictly inside (0, 1) (with 24
    bits the largest, 1 - 2**-25, rounds to 1.0, whose Gumbel noise is infinite)."""
    bits = _mix(_row_hash(keys, step)[:, None] ^ _mix((ids + 0x68E31DA4) & _M32))
    return ((bits >> 9).float() + 0.5) * 2.0 ** -23


def _gumbel(keys, step: int, ids):
    """Standard Gumbel noise for the tokens ids (-log(-log u) of their keyed uniforms)."""
    return -(-keyed_uniform(keys, step, ids).log()).log()


def _vocab_gumbel(keys, step: int, vocab: int):
    """Standard Gumbel noise over the whole vocabulary, a generator per row seeded by (key, step): the hash costs
    10x torch's generator at this size (49,152 tokens), so rows drawn over everything take this noise instead."""
    import torch

    seeds = _row_hash(keys, step).tolist()  # 32 bits: torch's CPU generator reads no more of a seed
    rows = [torch.rand(vocab, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    return -(-torch.stack(rows).log()).log()


def _top(scores, top_p: float):
    """(covered, scores of the TOP most likely tokens with top-p's removals at -inf, their token ids): covered
    rows are those whose TOP tokens hold top_p of the probability, so that nothing below them survives top-p."""
    top, idx = scores.topk(min(TOP, scores.shape[-1]), dim=-1)
    # log of the softmax normaliser; terms below e^-80 of the largest are clamped there: they add < 1e-30 of it,
    # nothing in float32, and unclamped their denormal exps take 20x as long as the rest of the step's sampling
    log_z = top[:, :1] + (scores - top[:, :1]).clamp_min(-80.0).exp().sum(-1, keepdim=True).log()
    probs = (top - log_z).exp()
    before = probs.cumsum(-1) - probs  # probability of the tokens ranked above each one
    covered = (before[:, -1] + probs[:, -1]) >= top_p
    return covered, top.masked_fill(before >= top_p, float("-inf")), idx


def nucleus_mask(scores, top_p: float):
    """True for the tokens top-p removes: those whose more likely tokens already hold top_p of the probability
    (transformers' TopPLogitsWarper: cumulative probability in ascending order <= 1 - top_p; the most likely
    token always stays)."""
    import torch

    covered, kept, idx = _top(scores, top_p)
    remove = torch.ones_like(scores, dtype=torch.bool).scatter_(-1, idx, kept == float("-inf"))
    if not bool(covered.all()):  # a flat distribution: sort these rows' whole vocabulary
        rows = (~covered).nonzero().flatten()
        srt, order = scores[rows].sort(dim=-1, descending=True)
        p = (srt - srt[:, :1]).clamp_min(-80.0).exp()
        p = p / p.sum(-1, keepdim=True)
        remove[rows] = torch.zeros_like(remove[rows]).scatter_(-1, order, (p.cumsum(-1) - p) >= top_p)
    return remove


def draw(scores, keys, step: int, top_p: float = 1.0):
    """One token per row from softmax(scores) restricted to top-p's nucleus (Gumbel-max), the noise a function of
    (keys[row], step) only. A row whose nucleus lies in its TOP tokens is drawn among those with noise keyed by
    token (keyed_uniform), any other row over the whole vocabulary (_vocab_gumbel): which way is the row's own."""
    if top_p >= 1.0:
        return (scores + _vocab_gumbel(keys, step, scores.shape[-1])).argmax(dim=-1, keepdim=True)
    covered, kept, idx = _top(scores, top_p)
    out = idx.gather(-1, (kept + _gumbel(keys, step, idx)).argmax(dim=-1, keepdim=True))
    if not bool(covered.all()):  # a flat distribution: these rows' nucleus from the whole vocabulary
        rows = (~covered).nonzero().flatten()
        flat = scores[rows].masked_fill(nucleus_mask(scores[rows], top_p), float("-inf"))
        out[rows] = (flat + _vocab_gumbel(keys[rows], step, flat.shape[-1])).argmax(dim=-1, keepdim=True)
    return out


class NucleusSample:
    """A transformers logits processor that draws the next token (temperature, top-k, top-p) itself, for the
    rows whose question_keys are `keys`, in a generate call whose prompts are `prompt_width` tokens wide."""

    def __init__(self, keys, prompt_width: int, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 to sample, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.keys, self.prompt_width = keys, prompt_width
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids, scores):
        import torch

        token = self.choose(scores, self.keys, input_ids.shape[1] - self.prompt_width)
        return torch.full_like(scores, float("-inf")).scatter_(-1, token, 0.0)

    def choose(self, scores, keys, step: int):
        """The drawn token ([rows, 1]) of each row of scores, whose question_keys are keys, at new token `step`."""
        s = scores.float() / self.temperature
        if self.top_k and self.top_k < s.shape[-1]:
            s = s.masked_fill(s < s.topk(self.top_k, dim=-1).values[:, -1:], float("-inf"))
        return draw(s, keys, step, self.top_p)


def as_greedy(gen_kwargs: dict, keys, prompt_width: int) -> dict:
    """generate's keyword arguments with transformers' sampling replaced by NucleusSample over the rows keyed
    `keys` (unchanged if greedy)."""
    if not gen_kwargs.get("do_sample"):
        return gen_kwargs
    from transformers import LogitsProcessorList

    kw = dict(gen_kwargs)
    sampler = NucleusSample(keys, prompt_width, kw.pop("temperature", 1.0), kw.pop("top_p", None) or 1.0,
                            kw.pop("top_k", None) or 0)
    processors = LogitsProcessorList(kw.pop("logits_processor", None) or [])
    processors.append(sampler)
    kw.update(do_sample=False, logits_processor=processors)
    return kw
