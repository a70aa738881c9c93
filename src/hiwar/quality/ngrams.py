"""Normalised Arabic words and word n-grams, shared by the diversity and contamination measures.

Words are compared in hiwar.arabic's match form (letter variants unified, tashkeel dropped, teh marbuta as
heh), so a spelling variant is not counted as a new word. An n-gram is hashed to one uint64 with a
polynomial over word ids: whole arrays per conversation in numpy, fast enough for tens of thousands of
conversations; two different n-grams sharing a 64-bit hash is negligible at this scale.
"""

from __future__ import annotations

import re

import numpy as np

from hiwar.arabic import match_key

WORD = re.compile(r"\w+")
_BASE = np.uint64(1_000_003)


def conversation_text(messages) -> str:
    return "\n".join(str(m["content"]) for m in messages)


def words(text: str) -> list[str]:
    return WORD.findall(match_key(text))


class Vocabulary:
    """Word -> integer id, growing as texts are seen (ids start at 1 so that no word hashes to 0)."""

    def __init__(self):
        self.ids: dict[str, int] = {}

    def encode(self, tokens: list[str]) -> np.ndarray:
        ids = self.ids
        return np.fromiter((ids.setdefault(w, len(ids) + 1) for w in tokens), dtype=np.uint64, count=len(tokens))


def ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """One hash per word n-gram of `ids` (empty when the text has fewer than n words)."""
    count = len(ids) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    hashes = np.zeros(count, dtype=np.uint64)
    for k in range(n):
        hashes = hashes * _BASE + ids[k:k + count]  # wraps modulo 2**64, which is what we want
    return hashes
