"""Where the `rating` stage's answers come from, and how far each rater can be trusted.

Two sources, read the same way: filled CSV sheets under ratings/filled/ (one per rater, named after them)
and the rating page's database ratings/answers.sqlite. Both become long rows (item, criterion, score) per
rater, checked against the same key; the agreement and scores are computed from first showings only,
so a rater's answers mean the same whichever way they were given.

Quality control (page only, except gold): each rater's self-agreement on the hidden repeats, the time
spent per item, and, when rating.gold names a file, the share of gold items answered as expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError
from hiwar.rating.sheets import check_answer, read_filled


def collect(ratings_dir: Path, key: pd.DataFrame, params) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """({rater: long first-showing answers}, every page answer with its showing and seconds)."""
    ratings = {path.stem: read_filled(path, key, params.criteria, params.scale, params.mode)
               for path in sorted((ratings_dir / "filled").glob("*.csv"))}
    page = page_answers(ratings_dir / "answers.sqlite", key, params)
    for rater, rows in page[page["showing"] == 0].groupby("rater"):
        if rater in ratings:
            raise HiwarError(f"rater {rater} has both a sheet (ratings/filled/{rater}.csv) and answers on the "
                             "rating page; rename one so each rater is counted once")
        ratings[rater] = rows[["item", "criterion", "score"]].reset_index(drop=True)
    return ratings, page


def page_answers(path: Path, key: pd.DataFrame, params) -> pd.DataFrame:
    columns = ["rater", "item", "showing", "criterion", "score", "seconds"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    from hiwar.rating.answers import AnswerStore

    store = AnswerStore(path)
    try:
        rows = store.long()
    finally:
        store.close()
    unknown = sorted(set(rows["item"]) - set(key["item"]))
    if unknown:
        raise HiwarError(f"{path}: item {unknown[0]} is not in ratings/key.csv (answers from another export?)")
    rows = rows[rows["criterion"].isin(params.criteria)].copy()
    rows["score"] = [check_answer(v, params.mode, params.scale) for v in rows["value"]]
    if rows["score"].isna().any():
        bad = rows[rows["score"].isna()].iloc[0]
        raise HiwarError(f"{path}: rater {bad['rater']}, item {bad['item']}: {bad['value']!r} is not an answer "
                         f"in {params.mode} mode")
    return rows[columns].reset_index(drop=True)


def quality(ratings: dict[str, pd.DataFrame], page: pd.DataFrame, params) -> dict:
    """Per rater: source, items answered, self-agreement on hidden repeats, seconds per item, gold share."""
    gold = read_gold(Path(params.gold), params) if params.gold else None
    raters = {}
    for rater, rows in sorted(ratings.items()):
        mine = page[page["rater"] == rater]
        entry = {"source": "page" if len(mine) else "sheet", "items": int(rows["item"].nunique())}
        if len(mine):
            entry["self_agreement"] = self_agreement(mine, params.mode)
            per_item = mine[mine["showing"] == 0].groupby("item")["seconds"].first()
            entry["seconds_per_item_median"] = round(float(per_item.median()), 1)
        if gold is not None:
            joined = rows.merge(gold, on=["item", "criterion"])
            entry["gold"] = {"answers": int(len(joined)),
                             "as_expected_share": round(float((joined["score"] == joined["expected"]).mean()), 4)
                             if len(joined) else None}
        raters[rater] = entry
    return {"status": "rated" if raters else "not rated", "raters": raters}


def self_agreement(rows: pd.DataFrame, mode: str) -> dict:
    """First showing against hidden repeat, per item and criterion answered both times."""
    first = rows[rows["showing"] == 0].set_index(["item", "criterion"])["score"]
    again = rows[rows["showing"] == 1].set_index(["item", "criterion"])["score"]
    both = pd.concat([first.rename("first"), again.rename("again")], axis=1, join="inner")
    if both.empty:
        return {"pairs": 0}
    result = {"pairs": int(len(both)), "identical_share": round(float((both["first"] == both["again"]).mean()), 4)}
    if mode == "likert":
        diff = np.abs(both["first"].astype(int) - both["again"].astype(int))
        result["mean_abs_difference"] = round(float(diff.mean()), 4)
    return result


def read_gold(path: Path, params) -> pd.DataFrame:
    if not path.is_file():
        raise HiwarError(f"{path}: not found (rating.gold names a CSV of item, criterion, expected)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if [c for c in ("item", "criterion", "expected") if c not in frame.columns]:
        raise HiwarError(f"{path}: expected columns item, criterion, expected")
    frame["expected"] = [check_answer(v, params.mode, params.scale) for v in frame["expected"]]
    if frame["expected"].isna().any():
        raise HiwarError(f"{path}: item {frame[frame['expected'].isna()].iloc[0]['item']}: expected is not an answer")
    return frame[["item", "criterion", "expected"]]
