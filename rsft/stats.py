"""Small statistics for the report: Wilson intervals, a paired bootstrap of a domain average, floor/ceiling
effects, and the run's headline in words.

On fractions in [0, 1] (scores of the result files); the words speak in percentage points.
"""
from __future__ import annotations

import math

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


def stratified_bootstrap(pairs: list[tuple[dict, dict]], n_boot: int = 10_000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float, float]:
    """(change, low, high) of the equal-weight mean over tasks of each task's mean paired difference b - a.
    pairs: one (a, b) per task, {question id: score} at two steps. Questions pair only within a task (the same
    questions at both steps), never across tasks, so each task's questions are resampled on their own; tasks
    weigh equally, as in the report's domain averages. With one task it is rsft.results.paired_bootstrap."""
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


def worst_step(by_step: dict[int, float]) -> int:
    """The step after the base with the lowest score (the earliest of equals): where a dip is measured."""
    return min((s for s in by_step if s != 0), key=lambda s: (by_step[s], s))


def floor_or_ceiling(by_step: dict[int, float]) -> str | None:
    """'floor' when a task is at 0 at every step, 'ceiling' at 1, else None: then no change can be seen at all."""
    values = set(by_step.values())
    if values == {0.0}:
        return "floor"
    if values == {1.0}:
        return "ceiling"
    return None


def _points(x: float) -> str:
    return f"{100 * x:+.0f}".replace("-", "−")


def _interval(ci: Interval | None) -> str:
    return f" [{_points(ci[0])}, {_points(ci[1])}]" if ci else ""


def headline(in_domain: dict[int, float], ood: dict[int, float], in_ci: dict[int, Interval] | None = None,
             ood_ci: dict[int, Interval] | None = None) -> str:
    """One sentence: the in-domain change from the base (step 0) at the last step, and the out-of-domain
    average's largest drop and whether it came back to the base by the last step (or its gain, if it never fell).
    `*_ci`: an interval of the change from the base per step (a paired bootstrap), shown where given."""
    in_ci, ood_ci = in_ci or {}, ood_ci or {}
    parts = []
    if len(in_domain) > 1:  # a base and a later step: a change to state
        last = max(in_domain)
        parts.append(f"in-domain {_points(in_domain[last] - in_domain[0])} points{_interval(in_ci.get(last))} "
                     f"by step {last}")
    if len(ood) > 1:
        steps = sorted(s for s in ood if s != 0)
        last = steps[-1]
        change = {s: ood[s] - ood[0] for s in steps}
        worst = worst_step(ood)
        if change[worst] < 0:
            back = next((s for s in steps if s > worst and change[s] >= 0), None)
            recovery = (f"back to the base by step {back}" if back is not None else
                        f"not recovered by step {last} ({_points(change[last])})" if last != worst else
                        "at the last step")
            parts.append(f"out-of-domain average {_points(change[worst])} points{_interval(ood_ci.get(worst))} "
                         f"at step {worst}, {recovery}")
        else:
            parts.append(f"out-of-domain average {_points(change[last])} points{_interval(ood_ci.get(last))} by "
                         f"step {last}, never below the base")
    return "; ".join(parts) + "." if parts else "No steps beyond the base to compare."
