"""Blinded rating sheets out, filled sheets in.

No rating is ever invented: until filled sheets (or page answers) exist the stage reports "not rated".

- export: a sample of held-out turns, each with the reply of every evaluated model, shuffled, model names
  replaced by item ids; the key that unblinds them is written separately.
- import: a rater's filled sheet is checked (every score an integer on the scale, or blank) and stored.

Two modes (rating.mode): `likert` items are one reply scored 1..scale per criterion; `pairwise` items
are two replies to the same turn, answered A, B or tie per criterion. The same item list and key serve
the CSV sheets and the rating page (rating/app.py), so an item means the same in both.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError

KEY_COLUMNS = ["item", "model", "kind", "turn"]
PAIR_KEY_COLUMNS = ["item", "turn", "model_a", "model_b"]  # model names as "<model>_<kind>"
SHEET_COLUMNS = ["item", "context", "reply"]
PAIR_SHEET_COLUMNS = ["item", "context", "reply_a", "reply_b"]
LABEL = {"user": "المستخدم", "assistant": "المساعد", "system": "النظام"}
PAIR_CHOICES = ("A", "tie", "B")  # ordered, so alpha and the distribution read left to right


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
