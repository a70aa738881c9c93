"""Small statistics shared by evaluation and human rating."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values: np.ndarray, rounds: int, seed: int) -> list[float]:
    """95% percentile-bootstrap interval of the mean."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(axis=1)
    return [round(float(q), 4) for q in np.quantile(means, [0.025, 0.975])]
