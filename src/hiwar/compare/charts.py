"""Small multiples: one panel per metric, the experiments on a shared, labelled vertical axis, each value a
dot with its 95% CI as an error bar and the best one filled darker. One PNG, at most MAX_WIDTH_PX wide,
its height grown with the number of rows so labels never overlap."""

from __future__ import annotations

import io
import math

from hiwar.compare.rows import Row
from hiwar.compare.table import Metric

MAX_WIDTH_PX = 1500
DPI = 100
COLUMNS = 4  # panels per line
COLORS = {"workspace": "#7f7f7f", "commit": "#4c72b0", "experiment": "#dd8452"}


def figure_size(rows: int, metrics: int) -> tuple[float, float]:
    """Inches at DPI: width capped at MAX_WIDTH_PX; each line of panels 0.2 in per row plus room for titles
    and ticks."""
    columns = min(COLUMNS, metrics)
    width = min(MAX_WIDTH_PX / DPI, 1.8 + 3.4 * columns)
    lines = math.ceil(metrics / columns)
    return width, 0.4 + lines * (1.0 + 0.2 * rows)


def small_multiples(rows: list[Row], metrics: list[Metric]) -> bytes:
    """The chart as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(COLUMNS, len(metrics))
    lines = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=figure_size(len(rows), len(metrics)), dpi=DPI,
                             sharey=True, squeeze=False)
    labels = [r.label if len(r.label) <= 28 else r.label[:27] + "…" for r in rows]
    ys = list(range(len(rows)))
    for ax, metric in zip(axes.flat, metrics):
        for y, row, value, ci in zip(ys, rows, metric.values, metric.cis):
            if value is None:
                continue
            error = [[value - ci[0]], [ci[1] - value]] if ci else None
            best = value == metric.best
            ax.errorbar(value, y, xerr=error, fmt="o", color=COLORS[row.kind], capsize=3, markersize=7 if best else 5,
                        markeredgecolor="black" if best else COLORS[row.kind])
        arrow = "lower is better" if metric.lower_is_better else "higher is better"
        ax.set_title(f"{metric.label}\n({arrow})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top, as in the table
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_yticks(ys, labels, fontsize=8)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=k) for k, c in COLORS.items()
               if any(r.kind == k for r in rows)]
    fig.legend(handles=handles, loc="lower right", fontsize=8, frameon=False, ncols=len(handles))
    fig.tight_layout(rect=(0, 0.04 if lines == 1 else 0.02, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()
