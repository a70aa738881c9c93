"""Leak-free, topic-stratified splitting.

Conversations are grouped so that nothing leaks between splits: a group is a connected component of
"same grid cell" and "near-duplicate" (MinHash Jaccard >= split.leak_threshold) links. Whole groups are
then dealt out in an order sorted by topic (shuffled within a topic by the seed), each to the split
furthest below its share so far, which keeps every split's share of each topic close to its target.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from hiwar.dedup import MinHasher, UnionFind, conversation_text, near_duplicate_clusters, signature_index
from hiwar.errors import HiwarError
from hiwar.params import SplitParams

SPLITS = ("train", "validation", "test")


def signatures(frame: pd.DataFrame, hasher: MinHasher) -> pd.Series:
    """MinHash signature of every conversation (with the clean stage's settings, dedup.hasher_for)."""
    texts = (conversation_text([dict(m) for m in messages]) for messages in frame["messages"])
    return pd.Series([hasher.signature(t) for t in texts], index=frame.index)


def leak_groups(frame: pd.DataFrame, threshold: float, sigs: pd.Series) -> pd.Series:
    """Group id per row: rows sharing a cell or a near-duplicate cluster share a group."""
    ids = list(frame["conversation_id"])
    cluster = near_duplicate_clusters(ids, list(sigs), threshold)
    components = UnionFind()
    for cid, cell in zip(ids, frame["cell_id"]):
        components.union(f"conv:{cid}", f"cell:{cell}")
        components.union(f"conv:{cid}", f"near:{cluster[cid]}")
    return pd.Series([components.find(f"conv:{cid}") for cid in ids], index=frame.index)


def split(frame: pd.DataFrame, params: SplitParams, sigs: pd.Series) -> dict[str, pd.DataFrame]:
    groups = leak_groups(frame, params.leak_threshold, sigs)
    if groups.nunique() < 3:
        raise HiwarError(f"split: only {groups.nunique()} leak-free group(s) of conversations passed cleaning; "
                         "need at least 3 for train/validation/test")
    sizes = groups.value_counts()
    topic = frame.groupby(groups)["topic"].agg(lambda t: Counter(t).most_common(1)[0][0])
    rng = np.random.default_rng(params.seed)
    order = sorted(sizes.index, key=lambda g: (topic[g], rng.random()))
    shares = {"train": 1 - params.validation - params.test, "validation": params.validation, "test": params.test}
    counts = dict.fromkeys(SPLITS, 0)
    assignment = {}
    for group in order:
        total = sum(counts.values()) + sizes[group]
        name = max(SPLITS, key=lambda s: (shares[s] * total - counts[s], -SPLITS.index(s)))
        assignment[group] = name
        counts[name] += int(sizes[group])
    empty = [name for name in SPLITS if counts[name] == 0]
    if empty:
        raise HiwarError(f"split: {', '.join(empty)} would be empty; lower the other shares or generate more")
    which = groups.map(assignment)
    return {name: frame[which == name].reset_index(drop=True) for name in SPLITS}


def leaks(parts: dict[str, pd.DataFrame], threshold: float, sigs: dict[str, np.ndarray]) -> dict:
    """Cells and near-duplicate pairs found in more than one split, checked independently of the grouping
    (a fresh index over the finished splits). `sigs` maps conversation_id to a signature already computed."""
    cells = {name: set(part["cell_id"]) for name, part in parts.items()}
    shared_cells = set().union(*(cells[a] & cells[b] for i, a in enumerate(SPLITS) for b in SPLITS[i + 1:]))
    index = signature_index(threshold, list(sigs.values()))
    split_of, crossing = {}, 0
    for name, part in parts.items():
        part_sigs = [sigs[cid] for cid in part["conversation_id"]]
        for cid, signature in zip(part["conversation_id"], part_sigs):
            crossing += sum(split_of[other] != name for other in index.matches(signature))
            index.add(cid, signature)
            split_of[cid] = name
    return {"cells_in_several_splits": len(shared_cells), "near_duplicate_pairs_across_splits": crossing}


def split_metrics(parts: dict[str, pd.DataFrame], threshold: float, sigs: dict[str, np.ndarray]) -> dict:
    return {
        "conversations": {name: int(len(part)) for name, part in parts.items()},
        "cells": {name: int(part["cell_id"].nunique()) for name, part in parts.items()},
        "topics": {name: int(part["topic"].nunique()) for name, part in parts.items()},
        **leaks(parts, threshold, sigs),
    }


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{np.mean(values):.1f} / {np.median(values):.0f} / {max(values):.0f}"


def dataset_card(parts: dict[str, pd.DataFrame], metrics: dict, params: SplitParams) -> str:
    """A Markdown card: how the data was made, counts, turn and length statistics, topics per split."""
    every = pd.concat(parts.values())
    generators = ", ".join(sorted(map(str, every["generator"].dropna().unique()))) or "unknown"
    lines = [
        "# hiwar dialogue dataset", "",
        f"Arabic multi-turn conversations generated by `{generators}` from a topic x country prompt grid, "
        "parsed and filtered by hiwar's cleaning stage (every rejection is kept with its reasons in "
        "`data/clean/rejected.parquet`), and split here.", "",
        "Format: Parquet, one conversation per row, `messages: [{role, content}]` (roles `user` / `assistant`) "
        "plus provenance (`conversation_id`, `cell_id`, `topic`, `country`, dialogue shape, generator, prompt hash).",
        "", "```python",
        'from datasets import load_dataset',
        'ds = load_dataset("parquet", data_files={s: f"data/split/{s}.parquet" for s in ("train", "validation", "test")})',
        "```", "",
        "## Splits", "",
        f"Whole groups of conversations go to one split; a group joins conversations of the same grid cell and "
        f"near-duplicates (MinHash Jaccard >= {params.leak_threshold}). Groups are dealt out by topic so each "
        f"split keeps its share of every topic (validation {params.validation}, test {params.test}, seed {params.seed}).",
        "", "| split | conversations | cells | topics | exchanges (mean / median / max) | "
        "user words per turn | assistant words per turn |", "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, part in parts.items():
        turns = [m for messages in part["messages"] for m in messages]
        exchanges = [sum(m["role"] == "assistant" for m in messages) for messages in part["messages"]]
        words = {role: [len(m["content"].split()) for m in turns if m["role"] == role] for role in ("user", "assistant")}
        lines.append(f"| {name} | {len(part)} | {part['cell_id'].nunique()} | {part['topic'].nunique()} | "
                     f"{_stats(exchanges)} | {_stats(words['user'])} | {_stats(words['assistant'])} |")
    lines += ["", f"Leakage check: {metrics['cells_in_several_splits']} cells and "
              f"{metrics['near_duplicate_pairs_across_splits']} near-duplicate pairs in more than one split.",
              "", "Lengths are whitespace-separated words, the same for every tokenizer.", "",
              "## Topics", "", "| topic | train | validation | test |", "| --- | --- | --- | --- |"]
    counts = {name: part["topic"].value_counts() for name, part in parts.items()}
    for topic in sorted(every["topic"].unique()):
        lines.append(f"| {topic} | " + " | ".join(str(int(counts[s].get(topic, 0))) for s in SPLITS) + " |")
    return "\n".join(lines) + "\n"
