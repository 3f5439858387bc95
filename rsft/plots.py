"""Figures of the report (matplotlib, Agg backend: no display needed). Most panels have the same shape: score
(or length, or rate) against training step on a log-scaled x axis. Step 0 (the base model) cannot sit on a log
axis, so there it is drawn as a horizontal reference line in the line's colour, with its ± standard-error band. A
panel on a symlog x axis (linear from 0 to the first step) draws step 0 as a point instead: the change figure.
Percent axes start at 0 and span at least MIN_SPAN points, so a flat 0 % line does not fill the panel with noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Point = tuple[float, float | None]  # (value, standard error or None)
MIN_SPAN = 10.0  # points: the least a percent or change axis spans (0..10 %, not -0.04..+0.04 for an all-zero task)


@dataclass(frozen=True)
class Line:
    label: str
    points: dict[int, Point]  # step -> point; step 0 is the base model
    color: str
    paper: bool = False  # the paper's published values: black, dotted, no error bars
    linestyle: str = "-"
    marker: str | None = "o"  # None for dense lines (a loss at every step)


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    lines: list[Line]
    x: str = "log"  # "log": step 0 is a reference line; "symlog": step 0 is a point; "linear"
    y: str = "auto"  # "percent": from 0; "change": around 0 (points); "auto": percent if ylabel starts with "%"

    @property
    def y_kind(self) -> str:
        return "percent" if self.y == "auto" and self.ylabel.startswith("%") else self.y


def colors(n: int) -> list[str]:
    return [f"C{i % 10}" for i in range(n)]


def _draw(ax, line: Line, base_as_line: bool) -> None:
    style = ({"color": "black", "linestyle": ":", "marker": "x"} if line.paper else
             {"color": line.color, "linestyle": line.linestyle, "marker": line.marker})
    if not base_as_line:
        steps = sorted(line.points)
        errs = [line.points[s][1] or 0.0 for s in steps]
        ax.errorbar(steps, [line.points[s][0] for s in steps], yerr=errs if any(errs) else None, capsize=3,
                    markersize=4, linewidth=1.2, label=line.label, **style)
        return
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


def y_limits(panel: Panel) -> tuple[float, float] | None:
    """Percent: from 0 to the highest value (+ its error bar and a margin), at least MIN_SPAN, at most 105.
    Change: around 0, at least MIN_SPAN wide. Other units: None (matplotlib's own limits)."""
    ends = [v + sign * (se or 0.0) for line in panel.lines for v, se in line.points.values() for sign in (-1, 1)]
    if not ends or panel.y_kind not in ("percent", "change"):
        return None
    top = max(max(ends), 0.0)
    if panel.y_kind == "percent":
        return 0.0, min(105.0, max(MIN_SPAN, top + max(1.0, 0.1 * top)))
    bottom, margin = min(min(ends), 0.0), 0.1 * (top - min(min(ends), 0.0)) + 1.0
    bottom, top = bottom - margin, top + margin
    grow = max(0.0, MIN_SPAN - (top - bottom)) / 2
    return bottom - grow, top + grow


def _format_axis(ax, panel: Panel) -> None:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    steps = sorted({s for line in panel.lines for s in line.points if s > 0})
    if steps and panel.x != "linear":
        if panel.x == "symlog":  # linear from 0 to the first step, log beyond: step 0 gets a place on the axis
            ax.set_xscale("symlog", linthresh=steps[0])
            steps = [0] + steps
        else:
            ax.set_xscale("log")
        ax.set_xticks(steps)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    if (limits := y_limits(panel)) is not None:
        ax.set_ylim(*limits)
    if panel.y_kind == "change":
        ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title(panel.title, fontsize=9)
    ax.set_xlabel({"log": "step (log scale; dashed = base, step 0)", "symlog": "step (0 = base; log scale beyond "
                   "the first step)", "linear": "step"}[panel.x], fontsize=7)
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
            _draw(ax, line, base_as_line=panel.x == "log")
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
    fig.savefig(path, dpi=110, bbox_inches="tight")  # grown to hold a legend wider than the panels
    plt.close(fig)
    return path
