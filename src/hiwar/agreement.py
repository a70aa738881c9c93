"""Agreement statistics between raters, shared by human rating and the judge (the judge as one more rater):
Cohen's kappa (quadratic weights or unweighted), Gwet's AC1 and Krippendorff's alpha.

sklearn and krippendorff are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def cohen_kappa_quadratic(a, b) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b, weights="quadratic"))


def cohen_kappa(a, b) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b))


def gwet_ac1(a, b, categories) -> float:
    """Gwet's AC1 for two raters: chance agreement from how spread the answers are over the q categories,
    pe = sum_k pi_k (1 - pi_k) / (q - 1), so answers bunched on one value do not push it down as they do
    kappa."""
    a, b = np.asarray(a), np.asarray(b)
    observed = float((a == b).mean())
    pi = np.array([((a == k).sum() + (b == k).sum()) / (2 * len(a)) for k in categories])
    chance = float((pi * (1 - pi)).sum() / (len(categories) - 1))
    return (observed - chance) / (1 - chance) if chance < 1 else float("nan")


def krippendorff_alpha(table: pd.DataFrame, level: str = "interval") -> float:
    """Krippendorff's alpha (the `krippendorff` package) for a units x raters table with NaN for missing
    ratings; NaN when fewer than two values can be paired or all values are the same."""
    import krippendorff

    data = table.to_numpy(dtype=float).T  # raters x units
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    if pairable.sum() == 0 or len(np.unique(data[:, pairable][~np.isnan(data[:, pairable])])) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=data[:, pairable], level_of_measurement=level))


def krippendorff_alpha_interval(table: pd.DataFrame) -> float:
    return krippendorff_alpha(table, "interval")
