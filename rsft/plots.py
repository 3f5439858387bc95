"""Figures of the report (matplotlib, Agg backend: no display needed). Every panel has the same shape:
score (or length, or rate) against training step on a log-scaled x axis. Step 0 (the base model) cannot sit on a
log axis, so it is drawn as a horizontal reference line in the line's colour, with its ± standard-error band.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Point = tuple[float, float | None]  # (value, standard error or None)


@dataclass(frozen=True)
class Line:
    label: str
    points: dict[int, Point]  # step -> point; step 0 is the base model
    color: str
    paper: bool = False  # the paper's published values: black, dotted, no error bars


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    lines: list[Line]


def colors(n: int) -> list[str]:
    return [f"C{i % 10}" for i in range(n)]


def _draw(ax, line: Line) -> None:
    style = {"color": "black", "linestyle": ":", "marker": "x"} if line.paper else {"color": line.color, "marker": "o"}
    if 0 in line.points:
        base, se = line.points[0]
        ax.axhline(base, color=style["color"], linestyle="--" if not line.paper else ":", linewidth=1, alpha=0.7)
        if se:
            ax.axhspan(base - se, base + se, color=style["color"], alpha=0.08)
    steps = sorted(s for s in line.points if s > 0)
    if not steps:
        return
    ys = [line.points[s][0] for s in steps]
    errs = None if line.paper else [line.points[s][1] or 0.0 for s in steps]
    ax.errorbar(steps, ys, yerr=errs, capsize=3, markersize=4, linewidth=1.2, label=line.label, **style)


def _format_axis(ax, panel: Panel) -> None:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    steps = sorted({s for line in panel.lines for s in line.points if s > 0})
    if steps:
        ax.set_xscale("log")
        ax.set_xticks(steps)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.set_title(panel.title, fontsize=9)
    ax.set_xlabel("step (log scale; dashed = base, step 0)", fontsize=7)
    ax.set_ylabel(panel.ylabel, fontsize=8)
    ax.grid(alpha=0.3)


def figure(path: Path, title: str, panels: list[Panel], ncols: int = 3) -> Path:
    """One PNG with a panel per entry and one legend for all panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows + 0.8), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for line in panel.lines:
            _draw(ax, line)
        _format_axis(ax, panel)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.suptitle(title, fontsize=11)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(4, len(handles)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
