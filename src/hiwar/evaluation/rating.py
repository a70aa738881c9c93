"""Human evaluation: blinded rating sheets out, filled sheets in, agreement and scores computed.

No rating is ever invented: until filled sheets exist the stage reports "not rated".

- export: a sample of held-out turns, each with the reply of every evaluated model, shuffled, model names
  replaced by item ids; the key that unblinds them is written separately.
- import: a rater's filled sheet is checked (every score an integer on the scale, or blank) and stored.
- agreement: per criterion, every pair of raters gets Cohen's kappa (quadratic weights, with a bootstrap
  95% CI over items), unweighted kappa, Gwet's AC1 and the share of identical answers, and Spearman's rho on
  the items both rated; Krippendorff's alpha (interval; nominal in pairwise mode) uses every rating,
  missing ones included, with a bootstrap CI. The distribution of answers sits beside them, with a note
  when kappa is low only because the answers bunch on one or two values (the prevalence paradox AC1 is
  made for). Every model gets its mean score with a bootstrap 95% CI, or in pairwise mode the win/tie/loss
  summary of hiwar/pairwise.py.

Two modes (rating.mode): `likert` items are one reply scored 1..scale per criterion; `pairwise` items
are two replies to the same turn, answered A, B or tie per criterion. The same item list and key serve
the CSV sheets and the rating page (evaluation/rating_app.py), so an item means the same in both.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.agreement import cohen_kappa, cohen_kappa_quadratic, gwet_ac1, krippendorff_alpha
from hiwar.errors import HiwarError
from hiwar.stats import bootstrap_ci, interval

KEY_COLUMNS = ["item", "model", "kind", "turn"]
PAIR_KEY_COLUMNS = ["item", "turn", "model_a", "model_b"]  # model names as "<model>_<kind>"
SHEET_COLUMNS = ["item", "context", "reply"]
PAIR_SHEET_COLUMNS = ["item", "context", "reply_a", "reply_b"]
LABEL = {"user": "المستخدم", "assistant": "المساعد", "system": "النظام"}
PAIR_CHOICES = ("A", "tie", "B")  # ordered, so alpha and the distribution read left to right
LOW_KAPPA = 0.4


def guard_formula(text: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading apostrophe,
    which spreadsheets hide and treat as "this is text"."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _context(history) -> str:
    return "\n".join(f"{LABEL[m['role']]}: {m['content']}" for m in history)


def _pick(replies: pd.DataFrame, sample: int, seed: int) -> pd.DataFrame:
    """`sample` scored turns, each with every model's reply, in random order."""
    rng = np.random.default_rng(seed)
    turns = sorted(replies["turn"].unique())
    chosen = set(rng.choice(turns, size=min(sample, len(turns)), replace=False).tolist())
    return replies[replies["turn"].isin(chosen)].sample(frac=1, random_state=seed).reset_index(drop=True)


def export_sheet(replies: pd.DataFrame, criteria: list[str], sample: int,
                 seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sheet for raters, unblinding key) from the evaluate stage's replies (model, kind, turn, history,
    reply): `sample` scored turns, each with every model's reply."""
    picked = _pick(replies, sample, seed)
    picked["item"] = [f"R{i + 1:04d}" for i in range(len(picked))]
    sheet = pd.DataFrame({
        "item": picked["item"],
        "context": [guard_formula(_context(history)) for history in picked["history"]],
        "reply": [guard_formula(str(r)) for r in picked["reply"]],
        **{c: "" for c in criteria},
    })
    return sheet, picked[KEY_COLUMNS]


def export_pairs(replies: pd.DataFrame, criteria: list[str], sample: int,
                 seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise mode: (sheet, key) with every pair of replies to each of `sample` turns, in random order,
    each pair's sides (A, B) drawn at random so no model sits on one side."""
    rng = np.random.default_rng(seed + 1)
    picked = _pick(replies, sample, seed).assign(name=lambda f: f["model"] + "_" + f["kind"])
    rows = []
    for turn, group in picked.groupby("turn", sort=True):
        for a, b in itertools.combinations(group.sort_values("name").to_dict("records"), 2):
            if rng.random() < 0.5:
                a, b = b, a
            rows.append({"turn": turn, "history": a["history"], "model_a": a["name"], "model_b": b["name"],
                         "reply_a": str(a["reply"]), "reply_b": str(b["reply"])})
    pairs = pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)
    pairs["item"] = [f"P{i + 1:04d}" for i in range(len(pairs))]
    sheet = pd.DataFrame({
        "item": pairs["item"],
        "context": [guard_formula(_context(h)) for h in pairs["history"]],
        "reply_a": pairs["reply_a"].map(guard_formula),
        "reply_b": pairs["reply_b"].map(guard_formula),
        **{c: "" for c in criteria},
    })
    return sheet, pairs[PAIR_KEY_COLUMNS]


def page_items(replies: pd.DataFrame, key: pd.DataFrame) -> list[dict]:
    """What the rating page shows for each item of `key`: history and reply (or reply_a and reply_b), and
    nothing that names a model. The page reads only this, never the key."""
    by_turn_model = {(r.turn, f"{r.model}_{r.kind}"): r for r in replies.itertuples()}
    items = []
    for row in key.to_dict("records"):
        if "model_a" in row:
            a, b = by_turn_model[(row["turn"], row["model_a"])], by_turn_model[(row["turn"], row["model_b"])]
            items.append({"item": row["item"], "history": list(a.history), "reply_a": str(a.reply),
                          "reply_b": str(b.reply)})
        else:
            r = by_turn_model[(row["turn"], f"{row['model']}_{row['kind']}")]
            items.append({"item": row["item"], "history": list(r.history), "reply": str(r.reply)})
    for item in items:  # plain dicts, so the JSON lines hold no numpy types
        item["history"] = [{"role": str(m["role"]), "content": str(m["content"])} for m in item["history"]]
    return items


def check_answer(value: str, mode: str, scale: int) -> str | int | None:
    """An answer as stored (int score, or "A"/"B"/"tie"), or None if it is not one."""
    value = value.strip()
    if mode == "pairwise":
        return {"a": "A", "b": "B", "tie": "tie"}.get(value.lower())
    return int(value) if value.isdigit() and 1 <= int(value) <= scale else None


def read_filled(path: Path, key: pd.DataFrame, criteria: list[str], scale: int, mode: str = "likert") -> pd.DataFrame:
    """A filled sheet as long rows (item, criterion, score); blanks are missing ratings, anything else that
    is not an answer (an integer from 1 to `scale`, or A, B or tie in pairwise mode) is an error naming the
    file, item and column."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ["item", *criteria] if c not in frame.columns]
    if missing:
        raise HiwarError(f"{path}: missing column(s) {', '.join(missing)} (expected the exported sheet, filled in)")
    unknown = sorted(set(frame["item"]) - set(key["item"]))
    if unknown:
        raise HiwarError(f"{path}: item {unknown[0]} is not in the rating key (a sheet from another export?)")
    expected = "A, B or tie" if mode == "pairwise" else f"a score from 1 to {scale}"
    rows = []
    for item, values in zip(frame["item"], frame[criteria].to_dict("records")):
        for criterion, raw in values.items():
            if not raw.strip():
                continue
            answer = check_answer(raw, mode, scale)
            if answer is None:
                raise HiwarError(f"{path}: item {item}, column {criterion}: {raw.strip()!r} is not {expected}")
            rows.append({"item": item, "criterion": criterion, "score": answer})
    return pd.DataFrame(rows, columns=["item", "criterion", "score"])


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
