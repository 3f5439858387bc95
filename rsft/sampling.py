"""Sampling for transformers' generate on CPU: the same distribution as its own, without its two slow steps.

transformers samples a token by sorting the whole vocabulary for top-p and drawing with `torch.multinomial`; for a
batch of 64 over SmolLM2's 49,152 tokens on 2 CPU cores that is 44 + 100 ms of a 467 ms step (cProfile; greedy
286 ms; bench/RESULTS.md). `NucleusSample` gives each token the same probability: temperature, then top-k if
asked, then top-p read off the 64 most likely tokens (exact whenever they hold p of the mass, else the full sort,
as transformers does it), then one draw by the Gumbel-max rule (the argmax of log-probabilities plus Gumbel noise
is a draw from their softmax), among those 64 when top-p left no other. It returns scores whose only finite
entry is the drawn token, so generate runs with `do_sample=False` and its argmax picks that token. Draws come
from torch's global generator, which lm-eval seeds. Only the task's and preset's sampling settings are read, not
a model's generation_config (transformers' own sampling would add, say, a top_k written there); its other
processors (repetition penalty, minimum length) still run, before this one.
"""
from __future__ import annotations

TOP = 64  # tokens read for top-p before falling back to sorting the vocabulary


def _gumbel(like):
    """Standard Gumbel noise shaped like `like` (uniform draws: torch's exponential_ is 6x slower on CPU)."""
    import torch

    return -(-torch.rand_like(like).log()).log()


def _top(scores, top_p: float):
    """(covered, scores of the TOP most likely tokens with top-p's removals at -inf, their token ids): covered
    rows are those whose TOP tokens hold top_p of the probability, so that nothing below them survives top-p."""
    import torch

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


def draw(scores, top_p: float = 1.0):
    """One token per row from softmax(scores) restricted to top-p's nucleus (Gumbel-max)."""
    if top_p < 1.0:
        covered, kept, idx = _top(scores, top_p)
        if bool(covered.all()):  # the usual case: the draw needs only the TOP tokens
            return idx.gather(-1, (kept + _gumbel(kept)).argmax(dim=-1, keepdim=True))
        scores = scores.masked_fill(nucleus_mask(scores, top_p), float("-inf"))
    return (scores + _gumbel(scores)).argmax(dim=-1, keepdim=True)


class NucleusSample:
    """A transformers logits processor that draws the next token (temperature, top-k, top-p) itself."""

    def __init__(self, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 to sample, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids, scores):
        import torch

        s = scores.float() / self.temperature
        if self.top_k and self.top_k < s.shape[-1]:
            s = s.masked_fill(s < s.topk(self.top_k, dim=-1).values[:, -1:], float("-inf"))
        return torch.full_like(scores, float("-inf")).scatter_(-1, draw(s, self.top_p), 0.0)


def as_greedy(gen_kwargs: dict) -> dict:
    """generate's keyword arguments with transformers' sampling replaced by NucleusSample (unchanged if greedy)."""
    if not gen_kwargs.get("do_sample"):
        return gen_kwargs
    from transformers import LogitsProcessorList

    kw = dict(gen_kwargs)
    sampler = NucleusSample(kw.pop("temperature", 1.0), kw.pop("top_p", None) or 1.0, kw.pop("top_k", None) or 0)
    processors = LogitsProcessorList(kw.pop("logits_processor", None) or [])
    processors.append(sampler)
    kw.update(do_sample=False, logits_processor=processors)
    return kw
