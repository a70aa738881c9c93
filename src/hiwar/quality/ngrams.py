"""Normalised Arabic words and word n-grams, shared by the diversity and contamination measures.

Words are compared in hiwar.arabic's match form (letter variants unified, tashkeel dropped, teh marbuta as
heh), so a spelling variant is not counted as a new word. An n-gram is hashed to one uint64 with a
polynomial over word ids, for the whole corpus at once in numpy (tens of thousands of conversations in
seconds); two different n-grams sharing a 64-bit hash is negligible at this scale.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from hiwar.arabic import match_key

WORD = re.compile(r"\w+")
_BASE = np.uint64(1_000_003)


def conversation_text(messages) -> str:
    return "\n".join(str(m["content"]) for m in messages)


def words(text: str) -> list[str]:
    return WORD.findall(match_key(text))


class Corpus:
    """Texts as one flat array of word ids (ids start at 1, so no word hashes to 0) with offsets.
    `encode` maps more texts (test, evaluation files) into the same ids; unseen words get new ids."""

    def __init__(self, tokens: list[list[str]]):
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        codes, uniques = pd.factorize(pd.Series([w for t in tokens for w in t], dtype=object))
        self.vocab = {w: i + 1 for i, w in enumerate(uniques)}
        self.ids = codes.astype(np.uint64) + np.uint64(1)
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)

    def encode(self, tokens: list[str]) -> np.ndarray:
        vocab = self.vocab
        return np.fromiter((vocab.setdefault(w, len(vocab) + 1) for w in tokens), dtype=np.uint64, count=len(tokens))

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of every word n-gram inside a text, and the index of the text each belongs to."""
        return flat_ngrams(self.ids, self.starts, self.lengths, n)


def flat_ngrams(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    count = len(ids) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    hashes = np.zeros(count, dtype=np.uint64)
    for k in range(n):
        hashes = hashes * _BASE + ids[k:k + count]  # wraps modulo 2**64, which is what we want
    owner = np.repeat(np.arange(len(lengths)), lengths)[:count]
    inside = np.arange(count) + n <= (starts + lengths)[owner]  # the n-gram does not run into the next text
    return hashes[inside], owner[inside]


def ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """Hashes of the word n-grams of one text."""
    return flat_ngrams(ids, np.zeros(1, np.int64), np.array([len(ids)]), n)[0]
