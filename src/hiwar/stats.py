"""Small statistics shared by evaluation, human rating and the judge.

Turns of one conversation are not independent (same topic, same speakers, same model state), so the
evaluation's intervals resample whole conversations (a cluster bootstrap): a turn-level bootstrap would
treat 6 turns of one conversation as 6 independent draws and give intervals that are too narrow.
"""

from __future__ import annotations

import numpy as np


def interval(draws, digits: int = 4) -> list[float]:
    """The 95% percentile interval of bootstrap draws, rounded."""
    return [round(float(q), digits) for q in np.quantile(draws, [0.025, 0.975])]


def bootstrap_ci(values: np.ndarray, rounds: int, seed: int) -> list[float]:
    """95% percentile-bootstrap interval of the mean of independent values."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(rounds, len(values)))].mean(axis=1)
    return interval(means)


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
    return interval(means)


def paired_difference(a: np.ndarray, b: np.ndarray, clusters: list, rounds: int, seed: int) -> dict:
    """b - a of the mean on the same items (e.g. base vs fine-tuned on the same turns): see paired_statistic."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores differ in shape: {a.shape} vs {b.shape}")
    ones = np.ones_like(a)
    return paired_statistic(np.column_stack([a, ones]), np.column_stack([b, ones]), clusters,
                            lambda sums: sums[:, 0] / sums[:, 1], rounds, seed)


def paired_statistic(a: np.ndarray, b: np.ndarray, clusters: list, statistic, rounds: int, seed: int) -> dict:
    """statistic(b) - statistic(a) for two systems scored on the same items, where each item contributes a
    row of additive counts (items, columns) and `statistic` maps summed rows (rounds, columns) to scores.

    The 95% interval resamples conversations (clusters), keeping each conversation's pair together. The
    two-sided p-value is a permutation test: under the null hypothesis (the systems do not differ) swapping
    which system produced a conversation's scores changes nothing, so each conversation is swapped at random;
    p is the share of such relabellings whose difference is at least as far from 0 as observed (+1
    correction, so it is never 0).
    """
    a_sums, b_sums = (np.stack([cluster_sums(col, clusters)[0] for col in m.T], axis=1) for m in (a, b))
    observed = float(statistic(b_sums.sum(0, keepdims=True))[0] - statistic(a_sums.sum(0, keepdims=True))[0])
    weights = cluster_resample_weights(len(a_sums), rounds, seed)
    boot = statistic(weights @ b_sums) - statistic(weights @ a_sums)
    swap = np.random.default_rng(seed + 1).integers(0, 2, size=(rounds, len(a_sums))).astype(float)
    null = statistic(swap @ a_sums + (1 - swap) @ b_sums) - statistic(swap @ b_sums + (1 - swap) @ a_sums)
    p = (1 + np.sum(np.abs(null) >= abs(observed) - 1e-12)) / (rounds + 1)
    return {"difference": round(observed, 4),
            "ci95": interval(boot),
            "p_value": round(float(p), 4), "conversations": int(len(a_sums)), "items": int(len(a))}
