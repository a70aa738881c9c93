"""The `rating` stage's figures: agreement between raters and scores per model.

Per criterion, every pair of raters gets Cohen's kappa (quadratic weights, with a bootstrap 95% CI over
items), unweighted kappa, Gwet's AC1 and the share of identical answers, and Spearman's rho on the items
both rated; Krippendorff's alpha (interval; nominal in pairwise mode) uses every rating, missing ones
included, with a bootstrap CI. The distribution of answers sits beside them, with a note when kappa is low
only because the answers bunch on one or two values (the prevalence paradox AC1 is made for). Every model
gets its mean score with a bootstrap 95% CI, or in pairwise mode the win/tie/loss summary of
hiwar/pairwise.py. The statistics themselves are hiwar/agreement.py's, shared with the judge.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from hiwar.agreement import cohen_kappa, cohen_kappa_quadratic, gwet_ac1, krippendorff_alpha
from hiwar.rating.sheets import PAIR_CHOICES
from hiwar.stats import bootstrap_ci, interval

LOW_KAPPA = 0.4


def _quantiles(values) -> list[float] | None:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return interval(values) if len(values) else None


def _round(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 4)


def _pair_stats(x: np.ndarray, y: np.ndarray, categories, mode: str, rounds: int, rng) -> dict:
    """Agreement of two raters on the items both answered (codes: scores, or 0/1/2 for A/tie/B)."""
    from scipy.stats import spearmanr

    def kappa(u, v):
        if len(np.unique(np.concatenate([u, v]))) < 2:
            return float("nan")  # one value only: kappa is undefined
        return cohen_kappa_quadratic(u, v) if mode == "likert" else cohen_kappa(u, v)

    name = "cohen_kappa_quadratic" if mode == "likert" else "cohen_kappa"
    picks = rng.integers(0, len(x), size=(rounds, len(x)))
    stats = {
        "items": int(len(x)),
        "identical_share": round(float((x == y).mean()), 4),
        name: _round(kappa(x, y)),
        f"{name}_ci95": _quantiles([kappa(x[p], y[p]) for p in picks]),
        "gwet_ac1": _round(gwet_ac1(x, y, categories)),
    }
    if mode == "likert":
        stats["cohen_kappa"] = _round(cohen_kappa(x, y)) if len(np.unique(np.concatenate([x, y]))) > 1 else None
        stats["spearman_rho"] = _round(float(spearmanr(x, y).statistic))
    return stats


def agreement(ratings: dict[str, pd.DataFrame], key: pd.DataFrame, criteria: list[str], rounds: int = 1000,
              seed: int = 0, mode: str = "likert", scale: int = 5) -> dict:
    """Agreement per criterion and rater pair, and mean scores per model (likert) or the win/tie/loss
    summary per criterion (pairwise), from each rater's long ratings (item, criterion, score)."""
    if len(ratings) == 0:
        return {"status": "not rated"}
    long = pd.concat([r.assign(rater=name) for name, r in ratings.items()], ignore_index=True)
    categories = list(range(1, scale + 1)) if mode == "likert" else [0, 1, 2]
    labels = [str(c) for c in categories] if mode == "likert" else list(PAIR_CHOICES)
    if mode == "pairwise":
        long["code"] = long["score"].map({c: i for i, c in enumerate(PAIR_CHOICES)})
    else:
        long["code"] = long["score"].astype(int)
    rng = np.random.default_rng(seed)
    result = {"status": "rated", "mode": mode, "raters": sorted(ratings), "criteria": {}}
    for criterion in criteria:
        rows = long[long["criterion"] == criterion]
        table = rows.pivot(index="item", columns="rater", values="code").astype(float)
        pairs = {}
        for a, b in itertools.combinations(sorted(ratings), 2):
            if a not in table or b not in table:
                continue
            both = table[[a, b]].dropna()
            if len(both) < 2:
                continue
            pairs[f"{a}~{b}"] = _pair_stats(both[a].to_numpy(int), both[b].to_numpy(int), categories, mode,
                                           rounds, rng)
        level = "interval" if mode == "likert" else "nominal"
        picks = rng.integers(0, len(table), size=(rounds, len(table)))
        counts = rows["code"].value_counts()
        entry = {
            "pairs": pairs,
            f"krippendorff_alpha_{level}": _round(krippendorff_alpha(table, level)),
            f"krippendorff_alpha_{level}_ci95": _quantiles([krippendorff_alpha(table.iloc[p], level) for p in picks]),
            "distribution": {label: int(counts.get(c, 0)) for c, label in zip(categories, labels)},
        }
        note = _low_kappa_note(pairs, entry["distribution"])
        if note:
            entry["note"] = note
        result["criteria"][criterion] = entry
    if mode == "pairwise":
        result["pairwise"] = _pairwise_summary(long, key, criteria, rounds, seed)
    else:
        result["models"] = _model_scores(long, key, rounds, seed)
    return result


def _low_kappa_note(pairs: dict, distribution: dict) -> str | None:
    """Say why a kappa is low when the answers bunch on a few values while raters mostly agree."""
    low = [name for name, p in pairs.items()
           if (p.get("cohen_kappa_quadratic", p.get("cohen_kappa")) or 0) < LOW_KAPPA and (p["gwet_ac1"] or 0) >= LOW_KAPPA]
    if not low:
        return None
    total = sum(distribution.values()) or 1
    (first, n1), (second, n2) = sorted(distribution.items(), key=lambda kv: -kv[1])[:2]
    return (f"kappa below {LOW_KAPPA} for {', '.join(low)} while AC1 is not: {n1 / total:.0%} of all answers "
            f"are {first} ({(n1 + n2) / total:.0%} are {first} or {second}), so chance agreement is high and "
            "kappa low even where raters agree (the prevalence paradox); read AC1 and the distribution beside it")


def _model_scores(long: pd.DataFrame, key: pd.DataFrame, rounds: int, seed: int) -> dict:
    scored = long.merge(key, on="item")
    models = {}
    for (model, kind), group in scored.groupby(["model", "kind"]):
        per_item = group.groupby("item")["code"].mean().to_numpy()  # raters and criteria averaged per item
        models[f"{model}_{kind}"] = {
            "mean_score": round(float(per_item.mean()), 3),
            "mean_score_ci95": bootstrap_ci(per_item, rounds, seed),
            "items": int(len(per_item)),
            "per_criterion": {c: round(float(g["code"].mean()), 3) for c, g in group.groupby("criterion")},
        }
    return models


def _pairwise_summary(long: pd.DataFrame, key: pd.DataFrame, criteria: list[str], rounds: int, seed: int) -> dict:
    from hiwar.pairwise import win_tie_loss

    joined = long.merge(key, on="item")
    joined["winner"] = np.where(joined["score"] == "A", joined["model_a"],
                                np.where(joined["score"] == "B", joined["model_b"], "tie"))
    return {c: win_tie_loss(joined[joined["criterion"] == c], rounds, seed) for c in criteria
            if (joined["criterion"] == c).any()}
