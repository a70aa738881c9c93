"""Leak-free splitting: whole grid cells go to one split, so no topic x country cell straddles two."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError
from hiwar.params import SplitParams

SPLITS = ("train", "validation", "test")


def split(frame: pd.DataFrame, params: SplitParams) -> dict[str, pd.DataFrame]:
    cells = np.array(sorted(frame["cell_id"].unique()))
    if len(cells) < 3:
        raise HiwarError(f"split: only {len(cells)} grid cell(s) passed cleaning; need at least 3 for train/validation/test")
    order = np.random.default_rng(params.seed).permutation(cells)
    sizes = frame.groupby("cell_id").size()
    # Shuffled cells fill test, then validation, each until it holds its share of conversations (so each
    # gets at least one cell); every remaining cell goes to train.
    targets = {"test": params.test * len(frame), "validation": params.validation * len(frame)}
    filled = dict.fromkeys(targets, 0)
    assignment = {}
    for cell in order:
        name = next((n for n, target in targets.items() if filled[n] < target), "train")
        assignment[cell] = name
        if name in filled:
            filled[name] += int(sizes[cell])
    if "train" not in assignment.values():
        raise HiwarError("split: validation + test took every cell; lower split.validation or split.test")
    which = frame["cell_id"].map(assignment)
    return {name: frame[which == name].reset_index(drop=True) for name in SPLITS}


def split_metrics(parts: dict[str, pd.DataFrame]) -> dict:
    """Counts per split and the leakage check: cells found in more than one split (0 by construction)."""
    cells = {name: set(part["cell_id"]) for name, part in parts.items()}
    shared = set()
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            shared |= cells[a] & cells[b]
    return {
        "conversations": {name: int(len(part)) for name, part in parts.items()},
        "cells": {name: len(c) for name, c in cells.items()},
        "cells_in_several_splits": len(shared),
    }
