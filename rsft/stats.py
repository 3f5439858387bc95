"""The report's statistics: Wilson and normal intervals, the paired bootstraps (one task; a domain average), the
dip (its worst step and its recovery, one definition for the headline, the dip table and the warnings), and
floor/ceiling effects. Pure functions on numbers: no files, no words.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rsft.errors import UserError

Interval = tuple[float, float]


def wilson(correct: float, n: int, z: float = 1.96) -> Interval:
    """95% Wilson score interval of a proportion (correct of n); sound at 0 and n, unlike p +- 1.96 se."""
    if n < 1:
        raise ValueError("a proportion needs at least one question")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_mean(proportions: list[float], ns: list[int], z: float = 1.96) -> Interval:
    """95% interval of the equal-weight mean of several proportions (one per task, p_t of n_t questions): Wilson's
    at the mean with the effective number of questions T^2 / sum(1/n_t), the n at which one proportion would have
    the mean's variance (equal n: the pooled proportion of all T n questions). Sound at 0 and 1, where the mean's
    1.96 s.e. is 0."""
    if not proportions or len(proportions) != len(ns) or min(ns) < 1:
        raise ValueError("one proportion and a count of at least one question per task")
    n_eff = len(ns) ** 2 / sum(1 / n for n in ns)
    mean = sum(proportions) / len(proportions)
    return wilson(mean * n_eff, n_eff, z)


def normal_interval(value: float, stderr: float, low: float | None = None,
                    high: float | None = None, z: float = 1.96) -> Interval:
    """value +- 1.96 s.e., clipped to [low, high] where given: for means (avg@k, averages, raw-unit metrics),
    whose per-question scores are not 0/1, so Wilson does not apply."""
    lo, hi = value - z * stderr, value + z * stderr
    return (lo if low is None else max(low, lo)), (hi if high is None else min(high, hi))


def paired_bootstrap(a: dict[int, float], b: dict[int, float], n_boot: int = 10_000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, low, high): a percentile interval of the mean paired difference over items (doc ids),
    resampling items with replacement. a and b must hold the same items."""
    import numpy as np

    if set(a) != set(b):
        raise UserError(f"a paired bootstrap needs the same items on both sides; {len(set(a) ^ set(b))} of "
                        f"{len(set(a) | set(b))} items are on one side only")
    d = np.array([b[i] - a[i] for i in sorted(a)], dtype=float)
    means = d[np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(d.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def stratified_bootstrap(pairs: list[tuple[dict, dict]], n_boot: int = 10_000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float, float]:
    """(change, low, high) of the equal-weight mean over tasks of each task's mean paired difference b - a.
    pairs: one (a, b) per task, {question id: score} at two steps. Questions pair only within a task (the same
    questions at both steps), never across tasks, so each task's questions are resampled on their own; tasks
    weigh equally, as in the report's domain averages. With one task it is paired_bootstrap."""
    import numpy as np

    rng = np.random.default_rng(seed)
    change, means = 0.0, np.zeros(n_boot)
    for a, b in pairs:
        if set(a) != set(b) or not a:
            raise ValueError("each task needs the same questions, at least one, on both sides")
        d = np.array([b[i] - a[i] for i in sorted(a)], dtype=float)
        change += d.mean() / len(pairs)
        means += d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1) / len(pairs)
    tail = 100 * (1 - level) / 2
    return float(change), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


# ------------------------------------------------------------------------------------------------ the dip


@dataclass(frozen=True)
class Dip:
    """The worst post-base score and whether (and when) the curve came back to the base score."""

    base: float | None
    worst: float | None = None
    worst_step: int | None = None
    recovered_step: int | None = None
    verdict: str = ""

    @property
    def dipped(self) -> bool:
        """Worse than the base at some step after it."""
        return self.verdict == "not recovered" or self.recovered_step is not None


def worst_step(by_step: dict[int, float], higher_is_better: bool = True) -> int:
    """The step after the base with the worst score (the lowest; the highest for a lower-is-better task), the
    earliest of equals: where a dip is measured."""
    sign = 1 if higher_is_better else -1
    return min((s for s in by_step if s > 0), key=lambda s: (sign * by_step[s], s))


def recovered_step(by_step: dict[int, float], worst: int, higher_is_better: bool = True) -> int | None:
    """Recovered: the first step after the worst one that is back at or above (for a lower-is-better task, at or
    below) the base score (step 0); None when none is."""
    sign = 1 if higher_is_better else -1
    return next((s for s in sorted(by_step) if s > worst and sign * by_step[s] >= sign * by_step[0]), None)


def find_dip(points: dict[int, float], higher_is_better: bool = True) -> Dip:
    """points: {step: value}, step 0 the base: the worst score after it (worst_step) and its recovery
    (recovered_step)."""
    sign = 1 if higher_is_better else -1
    base = points.get(0)
    if base is None:
        return Dip(None, verdict="no base (step 0) result")
    if not any(s > 0 for s in points):
        return Dip(base, verdict="no checkpoint results")
    worst_at = worst_step(points, higher_is_better)
    worst = points[worst_at]
    if sign * worst >= sign * base:
        return Dip(base, worst, worst_at, verdict="no dip (never worse than base)")
    back = recovered_step(points, worst_at, higher_is_better)
    verdict = f"recovered at step {back}" if back is not None else "not recovered"
    return Dip(base, worst, worst_at, back, verdict)


def headline_steps(in_domain: dict[int, float], ood: dict[int, float]) -> dict[bool, int]:
    """{in_domain: the step its headline number is read at}, for the averages given (each with a base and a later
    step): in-domain at the last step; the out-of-domain average at its dip's worst step if it dipped, else at the
    last step."""
    steps = {True: max(in_domain)} if in_domain else {}
    if ood:
        dip = find_dip(ood)
        steps[False] = dip.worst_step if dip.dipped else max(ood)
    return steps


# ------------------------------------------------------------------------------------------------ floors


def floor_or_ceiling(by_step: dict[int, float]) -> str | None:
    """'floor' when a task is at 0 at every step, 'ceiling' at 1, else None: then no change can be seen at all."""
    values = set(by_step.values())
    if values == {0.0}:
        return "floor"
    if values == {1.0}:
        return "ceiling"
    return None
