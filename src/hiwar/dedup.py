"""Duplicate detection on normalised Arabic.

Exact duplicates: equal normalised text. Near duplicates: MinHash over character n-grams of the normalised
text, indexed with datasketch's LSH; a candidate counts only when its estimated Jaccard similarity (share of
equal signature values) reaches the threshold. Signatures are computed with numpy in one pass per text
(multiply-shift hashing of a polynomial n-gram hash), which is what keeps paper scale fast; they are
deterministic across processes, unlike Python's salted `hash`.
"""

from __future__ import annotations

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from hiwar.arabic import match_key

_MASK32 = np.uint64(0xFFFFFFFF)


def conversation_text(messages: list[dict], keys: list[str] | None = None) -> str:
    """The normalised text a conversation is compared by (roles included, labels and styling not)."""
    keys = keys if keys is not None else [match_key(m["content"]) for m in messages]
    return "\n".join(f"{m['role']}: {key}" for m, key in zip(messages, keys))


class MinHasher:
    """One-permutation MinHash: each n-gram hash is mixed once and falls in one of `num_perm` bins by its top
    bits; a bin keeps its smallest value. Empty bins borrow from the next filled bin (rotation
    densification). Costs O(n-grams) per text instead of O(n-grams x num_perm), with the same estimator:
    the share of equal bins estimates Jaccard similarity."""

    def __init__(self, num_perm: int, ngram: int, seed: int = 1):
        if num_perm & (num_perm - 1):
            raise ValueError("num_perm must be a power of two")
        rng = np.random.default_rng(seed)
        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        self.bin_shift = np.uint64(64 - num_perm.bit_length() + 1)
        self.a = np.uint64(rng.integers(1, 2**63, dtype=np.uint64) | np.uint64(1))
        self.b = np.uint64(rng.integers(0, 2**63, dtype=np.uint64))
        self.powers = np.uint64(1000003) ** np.arange(ngram, dtype=np.uint64)
        self.step = np.arange(1, num_perm + 1, dtype=np.uint64) * np.uint64(0x9E3779B1)

    def shingles(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        if len(codes) < self.ngram:
            codes = np.pad(codes, (0, self.ngram - len(codes)))
        windows = np.lib.stride_tricks.sliding_window_view(codes, self.ngram)
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as a hash should
            return windows @ self.powers  # repeats are harmless: a bin keeps its minimum

    def signature(self, text: str) -> np.ndarray:
        with np.errstate(over="ignore"):
            mixed = self.shingles(text) * self.a + self.b
        bins = (mixed >> self.bin_shift).astype(np.intp)
        signature = np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        np.minimum.at(signature, bins, mixed & _MASK32)
        empty = signature == np.iinfo(np.uint64).max
        if empty.any():
            filled = np.flatnonzero(~empty)
            # distance to the next filled bin, circularly; the borrowed value is offset by that distance
            nxt = filled[np.searchsorted(filled, np.arange(self.num_perm)) % len(filled)]
            distance = (nxt - np.arange(self.num_perm)) % self.num_perm
            with np.errstate(over="ignore"):
                signature[empty] = (signature[nxt[empty]] + self.step[distance[empty] - 1]) & _MASK32
        return signature


def _lean(seed: int, signature: np.ndarray) -> LeanMinHash:
    # Our signatures are never mixed with datasketch's own MinHash objects; "legacy" is the scheme label
    # datasketch accepts for hash values made outside its current MinHash class.
    return LeanMinHash(seed=seed, hashvalues=signature, scheme="legacy")


class NearDupIndex:
    """Texts added so far, searchable for ones at least `threshold` similar."""

    def __init__(self, threshold: float, num_perm: int, ngram: int, seed: int = 1):
        self.threshold = threshold
        self.hasher = MinHasher(num_perm, ngram, seed)
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.signatures: dict[str, np.ndarray] = {}

    def signature(self, text: str) -> np.ndarray:
        return self.hasher.signature(text)

    def matches(self, signature: np.ndarray) -> list[str]:
        """Keys of added texts whose estimated Jaccard similarity reaches the threshold, best first."""
        found = []
        for key in self.lsh.query(_lean(self.hasher.seed, signature)):
            similarity = float(np.mean(self.signatures[key] == signature))
            if similarity >= self.threshold:
                found.append((similarity, key))
        return [key for _, key in sorted(found, reverse=True)]

    def add(self, key: str, signature: np.ndarray) -> None:
        self.lsh.insert(key, _lean(self.hasher.seed, signature), check_duplication=False)
        self.signatures[key] = signature


class UnionFind:
    """Connected components; a component is named by its earliest-added member."""

    def __init__(self):
        self.parent: dict = {}
        self.rank: dict = {}  # insertion order

    def find(self, x):
        if x not in self.parent:
            self.parent[x], self.rank[x] = x, len(self.rank)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> None:
        a, b = sorted((self.find(a), self.find(b)), key=self.rank.get)
        self.parent[b] = a


def hasher_for(params) -> MinHasher:
    """The MinHash settings of params section `clean` (minhash_perm, shingle_chars): clean and split compare
    conversations the same way."""
    return MinHasher(params.minhash_perm, params.shingle_chars)


def signature_index(threshold: float, signatures: list[np.ndarray]) -> NearDupIndex:
    """An empty index for signatures like these (their number of bins; the n-gram size plays no part in
    matching given signatures)."""
    return NearDupIndex(threshold, len(signatures[0]) if len(signatures) else 1, 1)


def near_duplicate_clusters(keys: list[str], signatures: list[np.ndarray], threshold: float) -> dict[str, str]:
    """Cluster id (the first key of its cluster) for every key: connected components of similar pairs,
    given each key's MinHash signature."""
    components = UnionFind()
    index = signature_index(threshold, signatures)
    for key, signature in zip(keys, signatures):
        components.find(key)
        for other in index.matches(signature):
            components.union(other, key)
        index.add(key, signature)
    return {k: components.find(k) for k in keys}
