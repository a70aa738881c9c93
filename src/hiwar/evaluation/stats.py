"""Small statistics shared by evaluation and human rating.

Turns of one conversation are not independent (same topic, same speakers, same model state), so the
evaluation's intervals resample whole conversations (a cluster bootstrap): a turn-level bootstrap would
treat 6 turns of one conversation as 6 independent draws and give intervals that are too narrow.
"""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values: np.ndarray, rounds: int, seed: int) -> list[float]:
    """95% percentile-bootstrap interval of the mean of independent values."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(axis=1)
    return [round(float(q), 4) for q in np.quantile(means, [0.025, 0.975])]


def cluster_sums(values: np.ndarray, clusters: list) -> tuple[np.ndarray, np.ndarray]:
    """(sum of values, number of values) per cluster, clusters in order of first appearance."""
    number: dict = {}
    index = np.array([number.setdefault(c, len(number)) for c in clusters], dtype=int)
    sums = np.bincount(index, weights=np.asarray(values, dtype=float), minlength=len(number))
    return sums, np.bincount(index, minlength=len(number)).astype(float)


def cluster_resample_weights(n_clusters: int, rounds: int, seed: int) -> np.ndarray:
    """(rounds, n_clusters) counts: how often each cluster is drawn, with replacement, in each round."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_clusters, np.full(n_clusters, 1 / n_clusters), size=rounds).astype(float)


def cluster_bootstrap_means(values: np.ndarray, clusters: list, rounds: int, seed: int) -> np.ndarray:
    """Bootstrap distribution of the overall (value-weighted) mean, resampling whole clusters."""
    sums, counts = cluster_sums(values, clusters)
    weights = cluster_resample_weights(len(sums), rounds, seed)
    return (weights @ sums) / (weights @ counts)


def cluster_bootstrap_ci(values: np.ndarray, clusters: list, rounds: int, seed: int) -> list[float]:
    """95% percentile interval of the mean of `values`, resampling clusters (conversations), not values."""
    means = cluster_bootstrap_means(values, clusters, rounds, seed)
    return [round(float(q), 4) for q in np.quantile(means, [0.025, 0.975])]


def paired_difference(a: np.ndarray, b: np.ndarray, clusters: list, rounds: int, seed: int) -> dict:
    """b - a on the same items (e.g. base vs fine-tuned on the same turns): the mean difference, its 95%
    cluster-bootstrap interval and a two-sided p-value from a cluster sign-flip permutation test.

    Under the null hypothesis (no difference between the two systems) swapping which system produced a
    conversation's scores changes nothing, so each conversation's summed difference gets a random sign; the
    p-value is the share of such relabellings whose mean difference is at least as far from 0 as observed
    (with the +1 correction, so it is never 0).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores differ in shape: {a.shape} vs {b.shape}")
    diff = b - a
    sums, counts = cluster_sums(diff, clusters)
    observed = sums.sum() / counts.sum()
    weights = cluster_resample_weights(len(sums), rounds, seed)
    boot = (weights @ sums) / (weights @ counts)
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=(rounds, len(sums)))
    null = (signs @ sums) / counts.sum()
    p = (1 + np.sum(np.abs(null) >= abs(observed) - 1e-12)) / (rounds + 1)
    return {"difference": round(float(observed), 4),
            "ci95": [round(float(q), 4) for q in np.quantile(boot, [0.025, 0.975])],
            "p_value": round(float(p), 4), "conversations": int(len(sums)), "items": int(len(diff))}
