"""A leak check that shares nothing with the split's grouping.

The grouping links conversations by MinHash over character n-grams of whole conversations. This check
looks at words instead: it hashes every normalised turn of at least `min_turn_words` words ("turn"), and
every word 8-gram and 13-gram inside a turn, and counts, for each pair of splits, the conversations of the
later split that share at least one of them with the earlier split. Two conversations that are different
as a whole but share one long turn word for word pass the grouping and are caught here.

Memory stays bounded: only the validation and test conversations' hashes are held; train is streamed.
What the split does with a leak (see `fix`): a validation or test conversation that shares a turn or a
13-gram with train, or a test conversation that shares one with validation, moves to train, and so does
anything that then shares one with a moved conversation. 8-grams are counted, not acted on: eight words in
a row can be a set phrase (a proverb, a formula of politeness) that two honest conversations both use.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Iterable

import numpy as np

from hiwar.arabic import normalize

KINDS = ("turn", "8gram", "13gram")
ACTED_ON = ("turn", "13gram")
PAIRS = (("train", "validation"), ("train", "test"), ("validation", "test"))
WORD = re.compile(r"[^\W_]+")
_PRIME = np.uint64(0x100000001B3)


@lru_cache(maxsize=1 << 20)
def _stable_hash(text: str) -> int:
    # Not Python's hash(): that is salted per process, and features are computed in whichever worker process
    # the engine picks, then compared in another. Cached: a corpus has far fewer distinct words than words.
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _word_hashes(words: list[str]) -> np.ndarray:
    return np.fromiter((_stable_hash(w) for w in words), dtype=np.uint64, count=len(words))


def features(messages, min_turn_words: int = 8) -> dict[str, np.ndarray]:
    """The 64-bit hashes of a conversation's long turns and of its word 8- and 13-grams (n-grams inside one
    turn only; repeats are harmless, so they are not removed here)."""
    turns = [words for m in messages if len(words := WORD.findall(normalize(m["content"]).lower())) >= min_turn_words]
    if not turns:
        return {kind: np.empty(0, np.uint64) for kind in KINDS}
    found = {"turn": np.array([_stable_hash(" ".join(words)) for words in turns], dtype=np.uint64)}
    hashes = _word_hashes([w for words in turns for w in words])
    turn_of = np.repeat(np.arange(len(turns)), [len(words) for words in turns])
    for n, kind in ((8, "8gram"), (13, "13gram")):
        if len(hashes) < n:
            found[kind] = np.empty(0, np.uint64)
            continue
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as a hash should
            grams = np.lib.stride_tricks.sliding_window_view(hashes, n) @ (_PRIME ** np.arange(n, dtype=np.uint64))
        found[kind] = grams[turn_of[:1 - n or None] == turn_of[n - 1:]]
    return found


class HeldOut:
    """The hashes of one held-out split (validation or test), with the row each came from, and each row's
    leak group (rows that must stay together: a grid cell, near duplicates)."""

    def __init__(self, rows: list[dict[str, np.ndarray]], groups=None):
        self.n = len(rows)
        self.groups = np.asarray(groups if groups is not None else range(self.n))
        self.hashes, self.rows = {}, {}
        for kind in KINDS:
            counts = [len(r[kind]) for r in rows]
            values = np.concatenate([r[kind] for r in rows]) if rows else np.empty(0, np.uint64)
            owner = np.repeat(np.arange(self.n, dtype=np.int32), counts)
            order = np.argsort(values, kind="stable")
            self.hashes[kind], self.rows[kind] = values[order], owner[order]

    def rows_sharing(self, kind: str, other: np.ndarray) -> np.ndarray:
        """Boolean per row: the row has a hash of this kind that is in `other` (sorted unique)."""
        mask = np.zeros(self.n, bool)
        hashes = self.hashes[kind]
        if len(hashes) and len(other):
            at = np.clip(np.searchsorted(other, hashes), 0, len(other) - 1)
            mask[self.rows[kind][other[at] == hashes]] = True
        return mask

    def union(self, kind: str, rows: np.ndarray) -> np.ndarray:
        """Sorted unique hashes of this kind held by the rows where `rows` is true."""
        return np.unique(self.hashes[kind][rows[self.rows[kind]]])


def check(held: dict[str, list], train_batches: Iterable[list], groups: dict[str, list] | None = None) -> dict:
    """Leaks between train (streamed: batches of each conversation's `features`) and the held-out splits (by
    split name, a list of each conversation's `features`), before and after the fix. Returns counts and, per held-out
    split, the rows to move; a row moves with its whole leak group (`groups`: a group id per row, by split
    name), so a grid cell is never cut in two."""
    groups = groups or {}
    parts = {name: HeldOut(rows, groups.get(name)) for name, rows in held.items()}
    with_train = {name: {kind: np.zeros(part.n, bool) for kind in KINDS} for name, part in parts.items()}
    for feats in train_batches:
        for kind in KINDS:
            batch_hashes = np.unique(np.concatenate([f[kind] for f in feats])) if feats else np.empty(0, np.uint64)
            for name, part in parts.items():
                with_train[name][kind] |= part.rows_sharing(kind, batch_hashes)
    before = _counts(parts, with_train, {name: np.zeros(p.n, bool) for name, p in parts.items()})
    moved = _fix(parts, with_train)
    after = _counts(parts, with_train, moved)
    return {"before": before, "after": after, "moved": {name: np.flatnonzero(m).tolist() for name, m in moved.items()}}


def _counts(parts: dict[str, HeldOut], with_train: dict, moved: dict[str, np.ndarray]) -> dict:
    """Per pair of splits and kind: conversations of the later split sharing a hash with the earlier one,
    once the rows in `moved` are in train."""
    moved_hashes = {kind: np.unique(np.concatenate([p.union(kind, moved[n]) for n, p in parts.items()]))
                    for kind in KINDS}
    counts = {}
    for first, second in PAIRS:
        key = f"{first}/{second}"
        part, stays = parts[second], ~moved[second]
        counts[key] = {}
        for kind in KINDS:
            if first == "train":
                hit = with_train[second][kind] | part.rows_sharing(kind, moved_hashes[kind])
            else:
                hit = part.rows_sharing(kind, parts[first].union(kind, ~moved[first]))
            counts[key][kind] = int((hit & stays).sum())
    return counts


def _fix(parts: dict[str, HeldOut], with_train: dict) -> dict[str, np.ndarray]:
    """Rows of validation and test to move to train (see the module's docstring), to a fixed point."""
    moved = {name: np.zeros(p.n, bool) for name, p in parts.items()}
    for name in parts:
        for kind in ACTED_ON:
            moved[name] |= with_train[name][kind]
    if "validation" in parts and "test" in parts:
        for kind in ACTED_ON:
            moved["test"] |= parts["test"].rows_sharing(kind, parts["validation"].union(kind, ~moved["validation"]))
    while True:
        grew = False
        for name, part in parts.items():  # whole groups move
            moved[name] |= np.isin(part.groups, part.groups[moved[name]])
        for kind in ACTED_ON:
            taken = np.unique(np.concatenate([p.union(kind, moved[n]) for n, p in parts.items()]))
            for name, part in parts.items():
                new = part.rows_sharing(kind, taken) & ~moved[name]
                if new.any():
                    moved[name] |= new
                    grew = True
        if not grew:
            return moved
