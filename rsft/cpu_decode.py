"""The CPU evaluation's decoding loop: a reply that has ended leaves the batch.

transformers' generate keeps every row of a batch in every step until the last row ends, so a batch of 100
prompts costs 100 rows x its longest reply, whatever the others need. `decode` runs the same model calls (the
prompt once, then one token per step over a key/value cache) but drops the rows that have ended, in groups (a
compaction copies the cache's filled part, so it waits until an eighth of the rows in the batch have ended): a
batch costs about the tokens its replies hold. Each row ends as generate would end it: at an end-of-sequence
token (kept in the reply), at a stop string (checked as lm-eval's stop criterion checks it, on the decoded last
tokens), at its own budget of new tokens (rsft.lm_backends.request_budgets), and at `ends`, a rule of the caller.
The result is generate's: [rows, prompt width + the largest budget], pad tokens after a row's end.

The tokens are those of generate given the same next-token choice, up to float rounding: a matrix product over
fewer rows may round differently (as one over another batch size does), which can tip a sampled draw that sits
at a boundary (bench/RESULTS.md counts them). Rows are chosen by `pick(scores, rows, step)`, with `rows` the batch
indices of the rows still in it, so a keyed sampler (rsft.sampling) gives each question its own noise.
"""
from __future__ import annotations

from typing import Callable

COMPACT_SHARE = 8  # rows leave the batch once 1/8 of those in it have ended (each compaction copies the cache)


class StopStrings:
    """lm-eval's stop criterion per row: a stop string within the decoded last (its tokens + 2) tokens."""

    def __init__(self, tokenizer, stops):
        self.tokenizer, self.stops = tokenizer, [s for s in stops if s]
        self.lookback = max((len(tokenizer.encode(s, add_special_tokens=False)) + 2 for s in self.stops), default=0)

    def __call__(self, generated):
        """generated: [rows, new tokens so far]; a bool per row."""
        import torch

        if not self.stops:
            return torch.zeros(generated.shape[0], dtype=torch.bool)
        texts = self.tokenizer.batch_decode(generated[:, -self.lookback:])
        return torch.tensor([any(s in t for s in self.stops) for t in texts], dtype=torch.bool)


def decode(model, context, attention_mask, budgets, pick: Callable, *, eos_ids, pad_id: int, cache,
           stops: StopStrings | None = None, ends: Callable | None = None):
    """Generate for a left-padded batch (context, attention_mask: [B, W]) up to budgets[row] new tokens per row;
    returns [B, W + max(budgets)] token ids, pad_id after each row's end. `cache`: an empty transformers Cache
    (rsft.kv_cache) with room for W + max(budgets) positions; `ends(rows, generated)` -> a bool per row (optional),
    its rows' generated tokens so far ([len(rows), steps]); `pick(scores, rows, step)` -> [len(rows), 1] tokens."""
    import torch

    batch, width = context.shape
    budgets = budgets.to(torch.long)
    out = torch.full((batch, width + int(budgets.max())), pad_id, dtype=context.dtype)
    out[:, :width] = context
    eos = torch.as_tensor(sorted(set(eos_ids)), dtype=context.dtype)
    rows = torch.arange(batch)  # batch index of each row in the model's batch
    live = torch.ones(batch, dtype=torch.bool)  # per row in the model's batch: not ended yet
    mask = attention_mask
    positions = (mask.long().cumsum(-1) - 1).clamp_min(0)
    ids, step = context, 0
    with torch.no_grad():
        while True:
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, logits_to_keep=1).logits[:, -1, :]
            at = rows[live]
            token = pick(logits[live], at, step).view(-1)
            out[at, width + step] = token
            step += 1
            ended = torch.isin(token, eos) | (step >= budgets[at])
            if stops is not None:
                ended |= stops(out[at, width:width + step])
            if ends is not None:
                ended |= ends(at, out[at, width:width + step])
            live[live.clone()] = ~ended
            if not bool(live.any()):
                return out
            feed = torch.full((len(rows),), pad_id, dtype=context.dtype)
            feed[live] = token[~ended]
            ids = feed.view(-1, 1)
            mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=mask.dtype)], dim=1)
            positions = positions[:, -1:] + 1
            dead = int((~live).sum())
            if dead * COMPACT_SHARE >= len(rows):
                keep = live.nonzero().flatten()
                cache.batch_select_indices(keep)
                rows, ids, mask, positions = rows[keep], ids[keep], mask[keep], positions[keep]
                live = live[keep]
