"""Contamination: train conversations sharing a normalised word n-gram (8 and 13 words by default) with the
test split or with an evaluation file (e.g. a benchmark's questions). A shared 13-gram is very unlikely by
chance; a shared 8-gram can be a set phrase, so both are reported. The option quality.decontaminate removes
the flagged train conversations, each kept in data/quality/removed.parquet with its reason code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError
from hiwar.quality.ngrams import Vocabulary, ngram_hashes, words


def read_eval_texts(path: str, column: str) -> list[str]:
    """Texts of an evaluation file: JSONL, CSV or Parquet with a text column, or plain text (one per line)."""
    file = Path(path)
    where = f"params.yaml: quality.eval_files: {path}"
    if not file.is_file():
        raise HiwarError(f"{where}: file not found (expected JSONL, CSV, Parquet or text)")
    suffix = file.suffix.lower()
    if suffix in (".txt", ".text"):
        return [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if suffix == ".jsonl":
        try:
            frame = pd.DataFrame([json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()])
        except json.JSONDecodeError as exc:
            raise HiwarError(f"{where}: not valid JSONL ({exc.msg})") from None
    elif suffix == ".csv":
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    elif suffix == ".parquet":
        frame = pd.read_parquet(file)
    else:
        raise HiwarError(f"{where}: unknown file type {suffix!r} (expected .jsonl, .csv, .parquet or .txt)")
    if column not in frame.columns:
        raise HiwarError(f"{where}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})")
    return [str(t) for t in frame[column] if str(t).strip()]


class NgramIndex:
    """The n-gram hashes of a set of reference texts, for each n."""

    def __init__(self, texts: list[str], sizes: list[int], vocab: Vocabulary):
        self.vocab = vocab
        ids = [vocab.encode(words(t)) for t in texts]
        self.hashes = {n: np.unique(np.concatenate([ngram_hashes(i, n) for i in ids] or [np.zeros(0, np.uint64)]))
                       for n in sizes}

    def flags(self, train_ids: list[np.ndarray], n: int) -> np.ndarray:
        """For each train text (as word ids): whether it shares an n-gram with the references."""
        grams = [ngram_hashes(i, n) for i in train_ids]
        if not grams:
            return np.zeros(0, dtype=bool)
        owner = np.repeat(np.arange(len(grams)), [len(g) for g in grams])
        hit = np.isin(np.concatenate(grams), self.hashes[n])
        return np.bincount(owner[hit], minlength=len(grams)) > 0


def overlap(index: NgramIndex, train_ids: list[np.ndarray], sizes: list[int]) -> tuple[dict, dict[int, np.ndarray]]:
    """Counts for the metrics, and the per-conversation flags for each n."""
    flags = {n: index.flags(train_ids, n) for n in sizes}
    counts = {f"train_conversations_{n}gram": int(flags[n].sum()) for n in sizes}
    return counts, flags
