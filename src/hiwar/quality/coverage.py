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


def gini(values) -> float:
    """Gini coefficient of non-negative counts (0 when all are equal or there are none)."""
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    n = len(x)
    return round(float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum())), 4)


def coverage_metrics(cells: pd.DataFrame) -> dict:
    return {
        "cells_requested": int(len(cells)),
        "cells_kept": int((cells["kept"] > 0).sum()),
        "cells_empty": int((cells["kept"] == 0).sum()),
        "gini_topic": gini(cells.groupby("topic")["kept"].sum()),
        "gini_country": gini(cells.groupby("country")["kept"].sum()),
    }


def heatmap(cells: pd.DataFrame, path: Path) -> None:
    """PNG of kept conversations per topic (rows) and country (columns); requested cells with none kept
    are marked with a red x, cells never requested are left white."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = cells.pivot(index="topic", columns="country", values="kept")
    fig, ax = plt.subplots(figsize=(max(6, 0.12 * grid.shape[1] + 3), max(4, 0.12 * grid.shape[0] + 2)))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # white: cells the grid never asked for
    image = ax.imshow(np.ma.masked_invalid(grid.to_numpy(dtype=float)), aspect="auto", cmap=cmap,
                      interpolation="nearest")
    empty = np.argwhere((grid == 0).to_numpy())
    ax.scatter(empty[:, 1], empty[:, 0], marker="x", s=8, color="red", linewidths=0.6, label="requested, none kept")
    small = 5 if max(grid.shape) > 60 else 7
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=90, fontsize=small)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=small)
    ax.set(xlabel="country", ylabel="topic", title="Kept conversations per topic x country")
    fig.colorbar(image, ax=ax, label="kept")
    if len(empty):
        ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
