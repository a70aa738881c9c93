"""Win/tie/loss summary of pairwise verdicts, shared by human raters (pairwise mode of the rating page and
sheets) and the LLM judge.

A verdict says which of two models' replies to the same item was better, or "tie". The summary is per
model pair, from the first model's side (names sorted, so "a vs b" and "b vs a" are one pair). The 95%
intervals come from a bootstrap over items, not verdicts: several raters (or both orders of a judge) on one
item are not independent evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError
from hiwar.stats import interval

COLUMNS = ["item", "model_a", "model_b", "winner"]
OUTCOMES = ("wins", "ties", "losses")


def win_tie_loss(verdicts: pd.DataFrame, rounds: int, seed: int) -> dict:
    """{"first vs second": {first, second, items, verdicts, wins, ties, losses, win_share, tie_share,
    loss_share and a [low, high] `*_share_ci95` for each}} from verdicts with columns item, model_a, model_b,
    winner (the winning model's name, or "tie")."""
    missing = [c for c in COLUMNS if c not in verdicts.columns]
    if missing:
        raise HiwarError(f"pairwise verdicts: missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    frame = verdicts[COLUMNS].astype(str)
    bad = frame[(frame["winner"] != "tie") & (frame["winner"] != frame["model_a"]) & (frame["winner"] != frame["model_b"])]
    if len(bad):
        row = bad.iloc[0]
        raise HiwarError(f"pairwise verdicts: item {row['item']}: winner {row['winner']!r} is neither "
                         f"{row['model_a']!r}, {row['model_b']!r} nor 'tie'")
    first = frame[["model_a", "model_b"]].min(axis=1)
    second = frame[["model_a", "model_b"]].max(axis=1)
    # +1 the first model (sorted) won, 0 tie, -1 the second won
    outcome = np.where(frame["winner"] == "tie", 0, np.where(frame["winner"] == first, 1, -1))
    table = pd.DataFrame({"item": frame["item"], "first": first, "second": second, "outcome": outcome})
    rng = np.random.default_rng(seed)
    summary = {}
    for (a, b), group in table.groupby(["first", "second"], sort=True):
        # per item: how many verdicts of each outcome, so resampling items keeps an item's verdicts together
        counts = np.stack([group.groupby("item")["outcome"].apply(lambda s, v=v: int((s == v).sum()))
                           for v in (1, 0, -1)], axis=1)
        totals = counts.sum(axis=0)
        picks = rng.integers(0, len(counts), size=(rounds, len(counts)))
        sampled = counts[picks].sum(axis=1)  # rounds x 3
        shares = sampled / sampled.sum(axis=1, keepdims=True)
        entry = {"first": a, "second": b, "items": int(len(counts)), "verdicts": int(totals.sum())}
        for i, name in enumerate(OUTCOMES):
            entry[name] = int(totals[i])
        for i, name in enumerate(("win", "tie", "loss")):
            entry[f"{name}_share"] = round(float(totals[i] / totals.sum()), 4)
            entry[f"{name}_share_ci95"] = interval(shares[:, i])
        summary[f"{a} vs {b}"] = entry
    return summary
