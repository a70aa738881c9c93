"""Win / tie / loss between pairs of models, from pairwise verdicts (an LLM judge's or people's).

Shared by the judge (hiwar.judge.pairwise) and human pairwise ratings: both hand over one row per judged
item with the two models and the winner, and get the same summary with the same intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError

COLUMNS = ["item", "model_a", "model_b", "winner"]


def win_tie_loss(verdicts: pd.DataFrame, rounds: int, seed: int) -> dict:
    """Per pair of models "A vs B": items, wins, ties and losses of A against B, their shares and 95%
    percentile-bootstrap intervals of the shares (items resampled). `winner` is the winning model's name or
    "tie". A pair met in both orientations (A, B) and (B, A) is counted once, oriented as first met."""
    missing = [c for c in COLUMNS if c not in verdicts.columns]
    if missing:
        raise HiwarError(f"pairwise verdicts: missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    bad = verdicts[~verdicts["winner"].eq("tie") & ~verdicts["winner"].eq(verdicts["model_a"])
                   & ~verdicts["winner"].eq(verdicts["model_b"])]
    if len(bad):
        row = bad.iloc[0]
        raise HiwarError(f"pairwise verdicts: item {row['item']}: winner {row['winner']!r} is neither "
                         f"{row['model_a']!r}, {row['model_b']!r} nor 'tie'")
    orientation: dict[frozenset, tuple[str, str]] = {}
    for a, b in zip(verdicts["model_a"], verdicts["model_b"]):
        orientation.setdefault(frozenset((a, b)), (a, b))
    rng = np.random.default_rng(seed)
    summary = {}
    for pair, (a, b) in orientation.items():
        rows = verdicts[[frozenset((x, y)) == pair for x, y in zip(verdicts["model_a"], verdicts["model_b"])]]
        # +1 a wins, 0 tie, -1 b wins
        outcome = np.where(rows["winner"].eq(a), 1, np.where(rows["winner"].eq(b), -1, 0))
        n = len(outcome)
        draws = outcome[rng.integers(0, n, size=(rounds, n))]
        entry = {"model_a": a, "model_b": b, "items": int(n)}
        for name, value in (("wins", 1), ("ties", 0), ("losses", -1)):
            entry[name] = int((outcome == value).sum())
            entry[f"{name}_share"] = round(float((outcome == value).mean()), 4)
            entry[f"{name}_share_ci95"] = [round(float(q), 4) for q in np.quantile((draws == value).mean(axis=1),
                                                                                   [0.025, 0.975])]
        summary[f"{a} vs {b}"] = entry
    return summary
