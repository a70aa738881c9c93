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
from hiwar.quality.ngrams import Corpus, ngram_hashes, words


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


def reference_ngrams(texts: list[str], corpus: Corpus, n: int) -> np.ndarray:
    """The distinct n-gram hashes of reference texts (e.g. an evaluation file), in `corpus`'s word ids."""
    grams = [ngram_hashes(corpus.encode(words(t)), n) for t in texts]
    return np.unique(np.concatenate(grams)) if grams else np.zeros(0, dtype=np.uint64)


def shares_ngram(hashes: np.ndarray, owner: np.ndarray, size: int, reference: np.ndarray) -> np.ndarray:
    """For each of `size` texts (n-gram `hashes` with the text each comes from): whether any of its
    n-grams is among the `reference` hashes."""
    hit = np.isin(hashes, reference)
    return np.bincount(owner[hit], minlength=size) > 0
