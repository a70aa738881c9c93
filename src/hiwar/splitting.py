"""Leak-free, topic-stratified splitting.

Conversations are grouped so that nothing leaks between splits: a group is a connected component of
"same grid cell" and "near-duplicate" (MinHash Jaccard >= split.leak_threshold) links. Whole groups are
then dealt out in an order sorted by topic (shuffled within a topic by the seed), each to the split
furthest below its share so far, which keeps every split's share of each topic close to its target.
An independent check (leakcheck.py: shared long turns and word n-grams) then moves any validation or test
conversation that still leaks into train.

`split_file` does all this streaming the clean Parquet file in batches: one pass for signatures, cells and
topics; one over validation and test and one over train for the leak check; one to write the splits.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from hiwar import leakcheck
from hiwar.dataset_card import SPLITS, SplitStats, dataset_card
from hiwar.dedup import MinHasher, UnionFind, conversation_text, near_duplicate_clusters, similar_pairs
from hiwar.errors import HiwarError
from hiwar.io import atomic_path, open_parquet
from hiwar.params import SplitParams



def signatures(frame: pd.DataFrame, hasher: MinHasher) -> pd.Series:
    """MinHash signature of every conversation (with the clean stage's settings, dedup.hasher_for)."""
    texts = (conversation_text([dict(m) for m in messages]) for messages in frame["messages"])
    return pd.Series([hasher.signature(t).astype(np.uint32) for t in texts], index=frame.index)


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


def split_with_report(frame: pd.DataFrame, params: SplitParams, sigs: pd.Series) -> tuple[dict, dict]:
    """Split a DataFrame in memory: the parts, and the independent leak check's report."""
    which, groups = assign(frame, params, sigs)
    held = {name: [leakcheck.features(m) for m in frame.loc[which == name, "messages"]] for name in SPLITS[1:]}
    report = leakcheck.check(held, [list(frame.loc[which == "train", "messages"])],
                             {name: list(groups[which == name]) for name in SPLITS[1:]})
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
        held = {n: [leakcheck.features(m) for m in parts[n]["messages"]] for n in SPLITS[1:]}
        report = leakcheck.check(held, [list(parts["train"]["messages"])])
    return {
        "conversations": {name: int(len(part)) for name, part in parts.items()},
        "cells": {name: int(part["cell_id"].nunique()) for name, part in parts.items()},
        "topics": {name: int(part["topic"].nunique()) for name, part in parts.items()},
        **leaks(parts, threshold, sigs),
        **independent_leaks(report),
    }


# --- streaming, for the stage ------------------------------------------------------------------------------

META = ["conversation_id", "cell_id", "topic"]


def _batches(reader: pq.ParquetFile, batch_rows: int, columns=None):
    """(row offset, rows) of a Parquet file, batch by batch."""
    offset = 0
    for batch in reader.iter_batches(batch_size=batch_rows, columns=columns):
        yield offset, batch.to_pylist()
        offset += batch.num_rows


def split_file(source: str | Path, out_dir: str | Path, params: SplitParams, hasher: MinHasher,
               batch_rows: int = 2048, progress: bool = False) -> dict:
    """Split the clean Parquet file into out_dir/{train,validation,test}.parquet and out_dir/README.md
    (the card), reading it in batches. Returns the metrics. Outputs appear only when all is written."""
    source, out_dir = Path(source), Path(out_dir)
    if not source.is_file():
        raise HiwarError(f"{source}: file not found (expected the output of stage `clean`; run `dvc repro`)")
    reader = open_parquet(source)
    missing = [c for c in META + ["messages"] if c not in reader.schema_arrow.names]
    if missing:
        raise HiwarError(f"{source}: missing column(s) {', '.join(missing)}")
    bar = dict(unit="conv", disable=not progress, dynamic_ncols=True, total=reader.metadata.num_rows)

    meta, sigs = [], []
    for _, rows in tqdm(_batches(reader, batch_rows, META + ["messages"]), desc="split: signatures", **bar):
        meta += [{c: row[c] for c in META} for row in rows]
        sigs += [hasher.signature(conversation_text(row["messages"])).astype(np.uint32) for row in rows]
    frame = pd.DataFrame(meta, columns=META)
    sigs = pd.Series(sigs, index=frame.index)
    which, groups = assign(frame, params, sigs)
    which, groups = which.to_numpy(), groups.to_numpy()

    def messages_of(names):
        for offset, rows in _batches(reader, batch_rows, ["messages"]):
            yield [row["messages"] for i, row in enumerate(rows) if which[offset + i] in names]

    held = {name: [] for name in SPLITS[1:]}
    for offset, rows in _batches(reader, batch_rows, ["messages"]):
        for i, row in enumerate(rows):
            if which[offset + i] != "train":
                held[which[offset + i]].append(leakcheck.features(row["messages"]))
    report = leakcheck.check(held, messages_of({"train"}), {name: groups[which == name] for name in SPLITS[1:]})
    del held
    which = move_leaks(pd.Series(which), report).to_numpy()

    stats = SplitStats()
    with ExitStack() as stack:
        paths = {name: stack.enter_context(atomic_path(out_dir / f"{name}.parquet")) for name in SPLITS}
        card_path = stack.enter_context(atomic_path(out_dir / "README.md"))
        writers = {name: stack.enter_context(pq.ParquetWriter(paths[name], reader.schema_arrow)) for name in SPLITS}
        for offset, rows in tqdm(_batches(reader, batch_rows), desc="split: write", **bar):
            for name in SPLITS:
                part = [row for i, row in enumerate(rows) if which[offset + i] == name]
                writers[name].write_table(pa.Table.from_pylist(part, schema=reader.schema_arrow))
                stats.add(name, part)
        for writer in writers.values():
            writer.close()
        metrics = {
            "conversations": dict(stats.rows),
            "cells": {name: len(stats.cells[name]) for name in SPLITS},
            "topics": {name: len(stats.topics[name]) for name in SPLITS},
            **signature_leaks(frame, which, params.leak_threshold, sigs),
            **independent_leaks(report),
        }
        card_path.write_text(dataset_card(stats, metrics, params), encoding="utf-8")
    return metrics


def signature_leaks(frame: pd.DataFrame, which: np.ndarray, threshold: float, sigs: pd.Series) -> dict:
    """`leaks` on the final assignment, from the metadata and signatures already in memory."""
    parts = {name: frame[which == name] for name in SPLITS}
    return leaks(parts, threshold, dict(zip(frame["conversation_id"], sigs)))
