"""Leak-free, topic-stratified splitting.

Conversations are grouped so that nothing leaks between splits: a group is a connected component of
"same grid cell" and "near-duplicate" (MinHash Jaccard >= split.leak_threshold) links. Whole groups are
then dealt out in an order sorted by topic (shuffled within a topic by the seed), each to the split
furthest below its share so far, which keeps every split's share of each topic close to its target.
An independent check (leakcheck.py: shared long turns and word n-grams) then moves any validation or test
conversation that still leaks into train.

`split_file` does all this streaming the clean Parquet file in batches: one pass for signatures, cells and
topics; one over validation and test and one over train for the leak check; one to write the splits. The
dataset card and Croissant metadata beside them are the `card` stage's (hiwar.cards), written after `quality`.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from tqdm import tqdm

from hiwar import engine as engines
from hiwar import leakcheck
from hiwar.dedup import MinHasher, UnionFind, conversation_text, near_duplicate_clusters, similar_pairs
from hiwar.errors import HiwarError
from hiwar.io import ParquetSink, open_parquet
from hiwar.params.split import SplitParams

SPLITS = ("train", "validation", "test")  # the order of the splits everywhere


def signature_batch(hasher: MinHasher, batch: list) -> list[np.ndarray]:
    """MinHash signatures of a batch of conversations (`messages`), with the clean stage's settings."""
    return [hasher.signature(conversation_text([dict(m) for m in messages])).astype(np.uint32) for messages in batch]


def feature_batch(_, batch: list) -> list[dict]:
    """The independent leak check's features of a batch of conversations (`messages`)."""
    return [leakcheck.features(messages) for messages in batch]


def signatures(frame: pd.DataFrame, hasher: MinHasher, engine: engines.Engine | None = None) -> pd.Series:
    """MinHash signature of every conversation of an in-memory frame (one batch)."""
    engine = engine or engines.current()
    [sigs] = engine.map(signature_batch, [list(frame["messages"])], setup=partial(engines.built, hasher))
    return pd.Series(sigs, index=frame.index)


def leak_groups(frame: pd.DataFrame, threshold: float, sigs: pd.Series) -> pd.Series:
    """Group id per row: rows sharing a cell or a near-duplicate cluster share a group."""
    ids = list(frame["conversation_id"])
    cluster = near_duplicate_clusters(ids, list(sigs), threshold)
    components = UnionFind()
    for cid, cell in zip(ids, frame["cell_id"]):
        components.union(f"conv:{cid}", f"cell:{cell}")
        components.union(f"conv:{cid}", f"near:{cluster[cid]}")
    return pd.Series([components.find(f"conv:{cid}") for cid in ids], index=frame.index)


def assign(frame: pd.DataFrame, params: SplitParams, sigs: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The split of every row (conversation_id, cell_id and topic are all it reads), by leak-free groups;
    and the group of every row."""
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
    return groups.map(assignment), groups


def move_leaks(which: pd.Series, report: dict) -> pd.Series:
    """The assignment with the leaking validation/test rows (leakcheck's `moved`, row numbers within their
    split in input order) in train."""
    which = which.copy()
    for name, rows in report["moved"].items():
        which[which.index[which == name][rows]] = "train"
    return which


def independent_check(message_batches: Callable[[], Iterable[list]], which: np.ndarray, groups: np.ndarray,
                      engine: engines.Engine) -> dict:
    """The independent leak check (leakcheck.py) of an assignment: held-out features in memory, train's
    streamed; features are computed on `engine`. `message_batches()` gives the rows' `messages` in batches,
    in input order, each time it is called."""
    def rows_in(names, labels=None):
        offset = 0
        for batch in message_batches():
            picked = [i for i in range(len(batch)) if which[offset + i] in names]
            if labels is not None:
                labels += [which[offset + i] for i in picked]
            yield [batch[i] for i in picked]
            offset += len(batch)

    labels: list[str] = []  # the split of each held-out row, filled as its batch is handed out
    held, n = {name: [] for name in SPLITS[1:]}, 0
    for feats in engine.map(feature_batch, rows_in(set(SPLITS[1:]), labels)):
        for f in feats:
            held[labels[n]].append(f)
            n += 1
    return leakcheck.check(held, engine.map(feature_batch, rows_in({"train"})),
                           {name: groups[which == name] for name in SPLITS[1:]})


def split_with_report(frame: pd.DataFrame, params: SplitParams, sigs: pd.Series,
                      engine: engines.Engine | None = None) -> tuple[dict, dict]:
    """Split a DataFrame in memory (one batch): the parts, and the independent leak check's report."""
    which, groups = assign(frame, params, sigs)
    report = independent_check(lambda: [list(frame["messages"])], which.to_numpy(), groups.to_numpy(),
                               engine or engines.current())
    which = move_leaks(which, report)
    return {name: frame[which == name].reset_index(drop=True) for name in SPLITS}, report


def split(frame: pd.DataFrame, params: SplitParams, sigs: pd.Series) -> dict[str, pd.DataFrame]:
    return split_with_report(frame, params, sigs)[0]


def leaks(parts: dict[str, pd.DataFrame], threshold: float, sigs: dict[str, np.ndarray]) -> dict:
    """Cells and near-duplicate pairs found in more than one split, recounted over the finished splits
    with the grouping's own signatures and threshold (a guard against a grouping bug, not an independent
    check: see leakcheck.py). `sigs` maps conversation_id to a signature already computed."""
    cells = {name: set(part["cell_id"]) for name, part in parts.items()}
    shared_cells = set().union(*(cells[a] & cells[b] for i, a in enumerate(SPLITS) for b in SPLITS[i + 1:]))
    ids = [cid for part in parts.values() for cid in part["conversation_id"]]
    split_of = np.array([name for name, part in parts.items() for _ in range(len(part))])
    crossing = 0
    if ids:
        first, second = similar_pairs(np.stack([sigs[cid] for cid in ids]), threshold)
        crossing = int((split_of[first] != split_of[second]).sum())
    return {"cells_in_several_splits": len(shared_cells), "near_duplicate_pairs_across_splits": crossing}


def independent_leaks(report: dict) -> dict:
    """The leak check's figures for metrics: per pair of splits and kind, before and after the fix."""
    return {"independent_leaks": {"before_fix": report["before"], "after_fix": report["after"],
                                  "moved_to_train": {name: len(rows) for name, rows in report["moved"].items()}}}


def split_metrics(parts: dict[str, pd.DataFrame], threshold: float, sigs: dict[str, np.ndarray],
                  report: dict | None = None) -> dict:
    """Counts, and both leak checks; without the split's `report`, the independent check runs on `parts`."""
    if report is None:
        held = {n: feature_batch(None, list(parts[n]["messages"])) for n in SPLITS[1:]}
        report = leakcheck.check(held, [feature_batch(None, list(parts["train"]["messages"]))])
    return {
        "conversations": {name: int(len(part)) for name, part in parts.items()},
        "cells": {name: int(part["cell_id"].nunique()) for name, part in parts.items()},
        "topics": {name: int(part["topic"].nunique()) for name, part in parts.items()},
        **leaks(parts, threshold, sigs),
        **independent_leaks(report),
    }


# --- streaming, for the stage ------------------------------------------------------------------------------

META = ["conversation_id", "cell_id", "topic"]


def split_file(source: str | Path | list, out_dir: str | Path, params: SplitParams, hasher: MinHasher,
               engine: engines.Engine | None = None, progress: bool = False) -> dict:
    """Split the clean Parquet file (or several, read one after the other: the clean stage's kept rows, then
    the top-up stage's) into out_dir/{train,validation,test}.parquet, reading in batches; per-conversation work
    runs on `engine`. The splits have the first file's columns. Returns the metrics. Outputs appear only when
    all is written."""
    sources, out_dir = [Path(p) for p in (source if isinstance(source, list) else [source])], Path(out_dir)
    engine = engine or engines.current()
    readers = []
    for path in sources:
        if not path.is_file():
            raise HiwarError(f"{path}: file not found (expected the output of stage `clean` or `topup`; run `dvc repro`)")
        readers.append(open_parquet(path))
        missing = [c for c in META + ["messages"] + readers[0].schema_arrow.names if c not in readers[-1].schema_arrow.names]
        if missing:
            raise HiwarError(f"{path}: missing column(s) {', '.join(dict.fromkeys(missing))}")
    reader = readers[0]
    bar = dict(unit="conv", disable=not progress, dynamic_ncols=True, total=sum(r.metadata.num_rows for r in readers))

    def batches(columns=None):
        columns = columns or reader.schema_arrow.names
        return (batch.to_pylist() for r in readers for batch in r.iter_batches(batch_size=engine.batch_rows, columns=columns))

    def message_batches():
        return ([row["messages"] for row in rows] for rows in batches(["messages"]))

    meta, sigs = [], []

    def signature_input():
        for rows in batches(META + ["messages"]):
            meta.extend({c: row[c] for c in META} for row in rows)
            yield [row["messages"] for row in rows]

    with tqdm(desc="split: signatures", **bar) as progress:
        for batch in engine.map(signature_batch, signature_input(), setup=partial(engines.built, hasher)):
            sigs += batch
            progress.update(len(batch))
    frame = pd.DataFrame(meta, columns=META)
    sigs = pd.Series(sigs, index=frame.index)
    which, groups = assign(frame, params, sigs)
    which, groups = which.to_numpy(), groups.to_numpy()
    report = independent_check(message_batches, which, groups, engine)
    which = move_leaks(pd.Series(which), report).to_numpy()

    rows, cells, topics = dict.fromkeys(SPLITS, 0), {n: set() for n in SPLITS}, {n: set() for n in SPLITS}
    with ExitStack() as stack:
        sinks = {name: stack.enter_context(ParquetSink(out_dir / f"{name}.parquet", reader.schema_arrow))
                 for name in SPLITS}
        offset = 0
        for batch in tqdm(batches(), desc="split: write", **bar):
            for name in SPLITS:
                part = [row for i, row in enumerate(batch) if which[offset + i] == name]
                sinks[name].write(part)
                rows[name] += len(part)
                cells[name].update(row["cell_id"] for row in part)
                topics[name].update(row["topic"] for row in part)
            offset += len(batch)
    return {
        "conversations": rows,
        "cells": {name: len(cells[name]) for name in SPLITS},
        "topics": {name: len(topics[name]) for name in SPLITS},
        **signature_leaks(frame, which, params.leak_threshold, sigs),
        **independent_leaks(report),
    }


def signature_leaks(frame: pd.DataFrame, which: np.ndarray, threshold: float, sigs: pd.Series) -> dict:
    """`leaks` on the final assignment, from the metadata and signatures already in memory."""
    parts = {name: frame[which == name] for name in SPLITS}
    return leaks(parts, threshold, dict(zip(frame["conversation_id"], sigs)))
