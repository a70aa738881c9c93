"""Coverage of the grid: kept conversations per topic x country cell, the requested cells with none kept,
and how unequal the counts are (Gini: 0 = every topic/country kept equally often, 1 = all in one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def cell_counts(kept: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """One row per requested (topic, country) cell, i.e. every cell with a kept or rejected conversation:
    topic, country, requested, kept."""
    requested = pd.concat([kept[["topic", "country"]], rejected[["topic", "country"]]])
    table = requested.value_counts().rename("requested").to_frame()
    table["kept"] = kept[["topic", "country"]].value_counts().reindex(table.index, fill_value=0)
    return table.reset_index().sort_values(["topic", "country"]).reset_index(drop=True)


def with_first_round(cells: pd.DataFrame, kept: pd.DataFrame) -> pd.DataFrame:
    """`cells` with `kept_before`: the cell's kept conversations from the first round alone (the clean stage's
    kept rows, `kept`), before the top-up rounds."""
    before = kept[["topic", "country"]].value_counts()
    index = pd.MultiIndex.from_frame(cells[["topic", "country"]])
    return cells.assign(kept_before=before.reindex(index, fill_value=0).to_numpy())


def gini(values) -> float:
    """Gini coefficient of non-negative counts (0 when all are equal or there are none)."""
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    n = len(x)
    return round(float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum())), 4)


def coverage_metrics(cells: pd.DataFrame) -> dict:
    figures = {
        "cells_requested": int(len(cells)),
        "cells_kept": int((cells["kept"] > 0).sum()),
        "cells_empty": int((cells["kept"] == 0).sum()),
        "gini_topic": gini(cells.groupby("topic")["kept"].sum()),
        "gini_country": gini(cells.groupby("country")["kept"].sum()),
    }
    if "kept_before" in cells:  # the same figures after the first round alone, before top-up
        figures["before_topup"] = coverage_metrics(cells.drop(columns="kept_before").assign(kept=cells["kept_before"]))
        del figures["before_topup"]["cells_requested"]
    return figures


def heatmap(cells: pd.DataFrame, path: Path) -> None:
    """PNG of kept conversations per topic (rows) and country (columns); requested cells with none kept
    are marked with a red x, cells never requested are left white. With `kept_before` (top-up), two panels:
    after the first round, and after the top-up rounds, on one colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("kept", "Kept conversations per topic x country")]
    if "kept_before" in cells:
        panels = [("kept_before", "Kept after the first round (before top-up)"), ("kept", "Kept after top-up")]
    grids = [cells.pivot(index="topic", columns="country", values=column) for column, _ in panels]
    width, height = max(6, 0.12 * grids[0].shape[1] + 3), max(4, 0.12 * grids[0].shape[0] + 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height), squeeze=False,
                             layout="constrained")
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # white: cells the grid never asked for
    top = max(float(np.nanmax(g.to_numpy(dtype=float))) if g.size else 0.0 for g in grids) or 1.0
    small = 5 if max(grids[0].shape) > 60 else 7
    for ax, grid, (_, title) in zip(axes[0], grids, panels):
        image = ax.imshow(np.ma.masked_invalid(grid.to_numpy(dtype=float)), aspect="auto", cmap=cmap,
                          interpolation="nearest", vmin=0, vmax=top)
        empty = np.argwhere((grid == 0).to_numpy())
        ax.scatter(empty[:, 1], empty[:, 0], marker="x", s=8, color="red", linewidths=0.6,
                   label=f"requested, none kept ({len(empty)})")
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=90, fontsize=small)
        ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=small)
        ax.set(xlabel="country", ylabel="topic", title=title)
        if len(empty):
            ax.legend(loc="upper right", fontsize=7)
    fig.colorbar(image, ax=list(axes[0]), label="kept")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
