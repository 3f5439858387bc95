"""Small statistics for the report: Wilson intervals, floor/ceiling effects, and the run's headline in words.

Pure Python, on fractions in [0, 1] (scores of the result files); the words speak in percentage points.
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
    if in_domain:
        last = max(in_domain)
        parts.append(f"in-domain {_points(in_domain[last] - in_domain[0])} points{_interval(in_ci.get(last))} "
                     f"by step {last}")
    if ood:
        steps = sorted(s for s in ood if s != 0)
        last = steps[-1]
        change = {s: ood[s] - ood[0] for s in steps}
        worst = min(steps, key=lambda s: (change[s], s))
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
