"""Replies side by side: for a handful of fixed test turns, the fine-tuned model's reply in each row's
revision, read from that revision's data/eval/replies.parquet through DVC (experiments are git refs DVC can
read; the workspace is read from disk)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hiwar.compare.rows import Row
from hiwar.paths import relative_paths

COLUMNS = ["turn", "history", "reference", "model", "kind", "reply"]


@dataclass
class Samples:
    model: str | None = None
    # {"turn", "topic", "history", "reference", "replies": {row label: reply or None}}
    turns: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "row: why its replies are not shown"


def read_replies(row: Row, repo: str = ".") -> pd.DataFrame:
    """That row's replies table; raises with DVC's reason when it cannot be read."""
    replies = relative_paths(repo)["replies"]
    if row.kind == "workspace":
        return pd.read_parquet(Path(repo) / replies)
    import dvc.api

    return pd.read_parquet(io.BytesIO(dvc.api.read(replies, repo=repo, rev=row.rev, mode="rb")))


def collect(rows: list[Row], count: int = 4, model: str | None = None, repo: str = ".",
            reader=read_replies) -> Samples:
    """The first `count` test turns (by turn number) of the first row that has replies, and every row's
    fine-tuned reply to them; `model` picks the fine-tuned model (default: the first by name)."""
    samples, tables, unreadable = Samples(), {}, {}
    replies = relative_paths(repo)["replies"]
    from tqdm import tqdm

    for row in tqdm(rows if count > 0 else [], desc="replies per row", leave=False, disable=len(rows) < 4):
        try:
            table = reader(row, repo)
        except Exception as exc:  # not in this revision, not in the local cache, unreadable: say so, go on
            unreadable.setdefault(type(exc).__name__, []).append(row.label)
            continue
        lacking = [c for c in COLUMNS if c not in table.columns]
        if lacking:
            samples.missing.append(f"{row.label}: {replies} has no column {', '.join(lacking)}")
            continue
        tables[row.label] = table[table["kind"] == "finetuned"]
    for reason, labels in unreadable.items():
        samples.missing.append(f"{replies} not readable ({reason}) for {', '.join(labels)}: not in this "
                               "revision, or its data not in the local DVC cache (`dvc pull`; for an "
                               "experiment `dvc exp pull <remote> <name>`)")
    if not tables:
        return samples
    models = sorted({m for t in tables.values() for m in t["model"]})
    samples.model = model if model in models else (models[0] if models else None)
    first = next(iter(tables.values()))
    first = first[first["model"] == samples.model].sort_values("turn").drop_duplicates("turn").head(count)
    for _, turn in first.iterrows():
        replies = {}
        for row in rows:
            table = tables.get(row.label)
            if table is None:
                continue
            match = table[(table["model"] == samples.model) & (table["turn"] == turn["turn"])]
            replies[row.label] = str(match["reply"].iloc[0]) if len(match) else None
        history = [dict(m) for m in turn["history"]]
        samples.turns.append({"turn": int(turn["turn"]), "topic": str(turn.get("topic", "")),
                              "history": history, "reference": str(turn["reference"]), "replies": replies})
    return samples
