"""A reply that only repeats itself is ended: the quickstart preset's rule (rsft/catalogue.py `end_repeats`).

The 135M model of the embedded default, trained on Countdown traces, often falls into a loop: it writes the same
"Try ..." line again and again until the token cap. A reply ends once its last tokens are COPIES exact copies of
one block (of any length up to MAX_PERIOD tokens), and span at least MIN_SPAN tokens, so that a short run such as
the digits of 1000 or a few dots never counts: a line of 20 tokens written 3 times in a row ends the reply at the
end of its third copy. What comes after is not generated; the reply is what the model had written by then.
Whether that changes a score was measured on the quickstart's replies: bench/RESULTS.md.

`Repeats` keeps, per row and per period p, how many of the latest tokens equal the token p before them, so each
new token costs one comparison per period for every row (a [rows, MAX_PERIOD] tensor), not a search of the reply.
"""
from __future__ import annotations

COPIES = 3  # copies of one block in a row
MIN_SPAN = 48  # tokens the copies span at least
MAX_PERIOD = 64  # the longest block looked for, in tokens


class Repeats:
    """For the rows of one batch: `update(rows, generated)` after each new token says which rows now end."""

    def __init__(self, batch: int):
        import torch

        self.run = torch.zeros(batch, MAX_PERIOD, dtype=torch.long)  # per row, period p = column + 1
        self.periods = torch.arange(1, MAX_PERIOD + 1)
        self.need = torch.maximum((COPIES - 1) * self.periods, MIN_SPAN - self.periods)  # run that makes a loop

    def update(self, rows, generated):
        """rows: the batch indices of generated's rows; generated: [len(rows), n] their tokens so far, the newest
        last. A bool per row: its last tokens are COPIES copies of a block spanning >= MIN_SPAN tokens."""
        import torch

        n = generated.shape[1]
        new = generated[:, -1:]
        back = torch.full((len(rows), MAX_PERIOD), -1, dtype=generated.dtype)
        prev = generated[:, max(0, n - 1 - MAX_PERIOD):n - 1].flip(1)  # column j: the token j + 1 before the newest
        back[:, :prev.shape[1]] = prev
        same = back == new
        run = torch.where(same, self.run[rows] + 1, torch.zeros_like(self.run[rows]))
        self.run[rows] = run
        return (run >= self.need).any(dim=1)


def ends_at(tokens: list[int]) -> int | None:
    """Where the rule ends a reply given as its token ids: the number of tokens kept, None if it never fires."""
    import torch

    rule = Repeats(1)
    ids = torch.tensor([tokens])
    for n in range(1, len(tokens) + 1):
        if bool(rule.update(torch.tensor([0]), ids[:, :n])[0]):
            return n
    return None
