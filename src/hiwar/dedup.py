"""Duplicate detection on normalised Arabic.

Exact duplicates: equal normalised text. Near duplicates: MinHash over character n-grams of the normalised
text, indexed with banded LSH (incrementally in `NearDupIndex`, all at once in `similar_pairs`); a candidate counts only when its estimated Jaccard similarity (share of
equal signature values) reaches the decision threshold (`decision_threshold`). Signatures are computed with numpy in one pass per text
(multiply-shift hashing of a polynomial n-gram hash), which is what keeps paper scale fast; they are
deterministic across processes, unlike Python's salted `hash`.
"""

from __future__ import annotations

import math

import numpy as np

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


# Up to this many texts every pair is compared (a few seconds at most), so any threshold finds all its pairs.
# Above it, banded LSH (`lsh_bands`) bounds the work; it misses more of the pairs far below 0.7.
EXACT_UP_TO = 2000


def decision_threshold(threshold: float, num_perm: int) -> float:
    """The estimate at which a pair counts as similar. `threshold` is on the true Jaccard similarity; the
    estimate (share of equal bins) has standard error sqrt(J(1-J)/num_perm), so pairs truly at the threshold
    would be missed half the time if the estimate had to reach it. Two standard errors below it, at least
    97% of the pairs truly at or above the threshold are caught (0.62 for 0.7 with 128 bins)."""
    return max(threshold - 2 * math.sqrt(threshold * (1 - threshold) / num_perm), 0.0)


def lsh_bands(threshold: float, num_perm: int, recall: float = 0.99, min_rows: int = 5) -> tuple[int, int]:
    """(bands, rows) of banded LSH: the most rows per band (fewest candidates to verify) such that a pair
    truly at the threshold shares at least one whole band with probability `recall`, but never fewer than
    `min_rows`: with fewer, unrelated texts of one language (similarity 0.1-0.2 from common words) become
    candidates by the billion at paper scale. With 128 bins that is 25 bands of 5 for any threshold from
    0.7 down: a pair at 0.7 is a candidate with probability 0.99, at 0.6 0.87, at 0.5 0.55."""
    for rows in range(num_perm, min_rows - 1, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold ** rows) ** bands >= recall:
            return bands, rows
    return num_perm // min_rows, min_rows


class NearDupIndex:
    """Texts added so far, searchable for ones similar to a new one (see `decision_threshold`).

    Banded LSH: a signature is cut into `bands` bands of `rows` bins (`lsh_bands`); texts sharing a whole
    band are candidates, and a candidate counts when its estimated
    similarity reaches the decision threshold. Only signatures (uint32) and band hashes are kept."""

    def __init__(self, threshold: float, num_perm: int, ngram: int, seed: int = 1):
        self.threshold = threshold
        self.cut = decision_threshold(threshold, num_perm)
        self.hasher = MinHasher(num_perm, ngram, seed)
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self.tables: list[dict[int, int | list[int]]] = [{} for _ in range(self.bands)]
        self.store = np.empty((1024, num_perm), dtype=np.uint32)
        self.keys: list[str] = []

    def signature(self, text: str) -> np.ndarray:
        return self.hasher.signature(text)

    def _band_hashes(self, signature: np.ndarray) -> list[int]:
        data = signature.astype(np.uint32).tobytes()
        width = self.rows * 4
        return [hash(data[b * width:(b + 1) * width]) for b in range(self.bands)]

    def matches(self, signature: np.ndarray) -> list[str]:
        """Keys of added texts whose estimated Jaccard similarity reaches the decision threshold, best first.
        While the index holds at most EXACT_UP_TO texts every one is compared; above, only LSH candidates."""
        if len(self.keys) <= EXACT_UP_TO:
            ids = np.arange(len(self.keys), dtype=np.int64)
        else:
            candidates = set()
            for table, band in zip(self.tables, self._band_hashes(signature)):
                found = table.get(band)
                if found is not None:
                    candidates.update(found if isinstance(found, list) else (found,))
            ids = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        if not len(ids):
            return []
        similarity = (self.store[ids] == signature.astype(np.uint32)).mean(axis=1)
        order = np.argsort(-similarity, kind="stable")
        return [self.keys[ids[i]] for i in order if similarity[i] >= self.cut]

    def add(self, key: str, signature: np.ndarray) -> None:
        idx = len(self.keys)
        if idx == len(self.store):
            self.store = np.concatenate([self.store, np.empty_like(self.store)])
        self.store[idx] = signature
        self.keys.append(key)
        for table, band in zip(self.tables, self._band_hashes(signature)):
            found = table.get(band)
            if found is None:
                table[band] = idx
            elif isinstance(found, list):
                found.append(idx)
            else:
                table[band] = [found, idx]


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


def similar_pairs(signatures: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) of rows of a signature matrix (one row per text) that count as similar, found
    band by band by sorting (memory: a few arrays of one number per row, not an index)."""
    n, num_perm = signatures.shape
    bands, rows = lsh_bands(threshold, num_perm)
    cut = decision_threshold(threshold, num_perm)
    if n <= EXACT_UP_TO:  # every pair
        i, j = np.triu_indices(n, 1)
        similarity = np.concatenate([(signatures[i[k:k + 65536]] == signatures[j[k:k + 65536]]).mean(axis=1)
                                     for k in range(0, len(i), 65536)]) if len(i) else np.zeros(0)
        keep = similarity >= cut
        return i[keep].astype(np.int64), j[keep].astype(np.int64)
    found = []
    for band in range(bands):
        block = np.ascontiguousarray(signatures[:, band * rows:(band + 1) * rows], dtype=np.uint32)
        _, group = np.unique(block.view(np.dtype((np.void, 4 * rows))).ravel(), return_inverse=True)
        order = np.argsort(group, kind="stable")
        starts = np.flatnonzero(np.diff(group[order], prepend=-1))
        sizes = np.diff(np.append(starts, n))
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
            members = order[start:start + size]
            i, j = np.triu_indices(size, 1)
            found.append(np.stack([members[i], members[j]], axis=1))
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = np.unique(np.sort(np.concatenate(found), axis=1), axis=0)
    similarity = np.concatenate([(signatures[pairs[k:k + 65536, 0]] == signatures[pairs[k:k + 65536, 1]]).mean(axis=1)
                                 for k in range(0, len(pairs), 65536)])
    keep = similarity >= cut
    return pairs[keep, 0], pairs[keep, 1]


def near_duplicate_clusters(keys: list[str], signatures: list[np.ndarray], threshold: float) -> dict[str, str]:
    """Cluster id (the first key of its cluster) for every key: connected components of similar pairs,
    given each key's MinHash signature."""
    components = UnionFind()
    for key in keys:
        components.find(key)
    if len(keys):
        first, second = similar_pairs(np.stack(signatures), threshold)
        for i, j in zip(first.tolist(), second.tolist()):
            components.union(keys[i], keys[j])
    return {k: components.find(k) for k in keys}
