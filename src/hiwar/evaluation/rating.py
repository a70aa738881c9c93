"""Human evaluation: blinded rating sheets out, filled sheets in, agreement and scores computed.

No rating is ever invented: until filled sheets exist the stage reports "not rated".

- export: a sample of held-out turns, each with the reply of every evaluated model, shuffled, model names
  replaced by item ids; the key that unblinds them is written separately.
- import: a rater's filled sheet is checked (every score an integer on the scale, or blank) and stored.
- agreement: per criterion, every pair of raters gets Cohen's kappa (quadratic weights) and Spearman's rho
  on the items both rated; Krippendorff's alpha (interval) uses every rating, missing ones included;
  every model gets its mean score with a bootstrap 95% CI.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError
from hiwar.evaluation.stats import bootstrap_ci

KEY_COLUMNS = ["item", "model", "kind", "turn"]
SHEET_COLUMNS = ["item", "context", "reply"]
LABEL = {"user": "المستخدم", "assistant": "المساعد", "system": "النظام"}


def export_sheet(replies: pd.DataFrame, criteria: list[str], sample: int,
                 seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sheet for raters, unblinding key) from the evaluate stage's replies (model, kind, turn, history,
    reply): `sample` scored turns, each with every model's reply."""
    rng = np.random.default_rng(seed)
    turns = sorted(replies["turn"].unique())
    chosen = set(rng.choice(turns, size=min(sample, len(turns)), replace=False).tolist())
    picked = replies[replies["turn"].isin(chosen)].sample(frac=1, random_state=seed).reset_index(drop=True)
    picked["item"] = [f"R{i + 1:04d}" for i in range(len(picked))]
    sheet = pd.DataFrame({
        "item": picked["item"],
        "context": ["\n".join(f"{LABEL[m['role']]}: {m['content']}" for m in history) for history in picked["history"]],
        "reply": picked["reply"],
        **{c: "" for c in criteria},
    })
    return sheet, picked[KEY_COLUMNS]


def read_filled(path: Path, key: pd.DataFrame, criteria: list[str], scale: int) -> pd.DataFrame:
    """A filled sheet as long rows (item, criterion, score); blanks are missing ratings, anything else that
    is not an integer from 1 to `scale` is an error naming the file, item and column."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ["item", *criteria] if c not in frame.columns]
    if missing:
        raise HiwarError(f"{path}: missing column(s) {', '.join(missing)} (expected the exported sheet, filled in)")
    unknown = sorted(set(frame["item"]) - set(key["item"]))
    if unknown:
        raise HiwarError(f"{path}: item {unknown[0]} is not in the rating key (a sheet from another export?)")
    rows = []
    for item, values in zip(frame["item"], frame[criteria].to_dict("records")):
        for criterion, raw in values.items():
            raw = raw.strip()
            if not raw:
                continue
            if not raw.isdigit() or not 1 <= int(raw) <= scale:
                raise HiwarError(f"{path}: item {item}, column {criterion}: {raw!r} is not a score from 1 to {scale}")
            rows.append({"item": item, "criterion": criterion, "score": int(raw)})
    return pd.DataFrame(rows, columns=["item", "criterion", "score"])


def cohen_kappa_quadratic(a, b) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b, weights="quadratic"))


def krippendorff_alpha_interval(table: pd.DataFrame) -> float:
    """Krippendorff's alpha, interval metric, for a units x raters table with NaN for missing ratings."""
    units = [row[~np.isnan(row)] for row in table.to_numpy(dtype=float)]
    units = [u for u in units if len(u) >= 2]  # only pairable units count
    values = np.concatenate(units) if units else np.zeros(0)
    n = len(values)
    if n < 2:
        return float("nan")
    observed = sum(((u[:, None] - u[None, :]) ** 2).sum() / (len(u) - 1) for u in units) / n
    expected = ((values[:, None] - values[None, :]) ** 2).sum() / (n * (n - 1))
    return float(1 - observed / expected) if expected else float("nan")


def agreement(ratings: dict[str, pd.DataFrame], key: pd.DataFrame, criteria: list[str], rounds: int = 1000,
              seed: int = 0) -> dict:
    """Agreement per criterion and rater pair, and mean scores per model, from each rater's long ratings."""
    if len(ratings) == 0:
        return {"status": "not rated"}
    long = pd.concat([r.assign(rater=name) for name, r in ratings.items()], ignore_index=True)
    result = {"status": "rated", "raters": sorted(ratings), "criteria": {}, "models": {}}
    for criterion in criteria:
        table = long[long["criterion"] == criterion].pivot_table(index="item", columns="rater", values="score")
        pairs = {}
        for a, b in itertools.combinations(sorted(ratings), 2):
            if a not in table or b not in table:
                continue
            both = table[[a, b]].dropna()
            if len(both) < 2:
                continue
            from scipy.stats import spearmanr

            pairs[f"{a}~{b}"] = {
                "items": int(len(both)),
                "cohen_kappa_quadratic": round(cohen_kappa_quadratic(both[a].astype(int), both[b].astype(int)), 4),
                "spearman_rho": round(float(spearmanr(both[a], both[b]).statistic), 4),
            }
        result["criteria"][criterion] = {
            "pairs": pairs,
            "krippendorff_alpha_interval": round(krippendorff_alpha_interval(table), 4),
        }
    scored = long.merge(key, on="item")
    for (model, kind), group in scored.groupby(["model", "kind"]):
        per_item = group.groupby("item")["score"].mean().to_numpy()  # raters and criteria averaged per item
        result["models"][f"{model}_{kind}"] = {
            "mean_score": round(float(per_item.mean()), 3),
            "mean_score_ci95": bootstrap_ci(per_item, rounds, seed),
            "items": int(len(per_item)),
            "per_criterion": {c: round(float(g["score"].mean()), 3) for c, g in group.groupby("criterion")},
        }
    return result
