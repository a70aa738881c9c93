"""Near-duplicate detection against pairs of known true Jaccard similarity (of the character 5-gram sets
MinHash estimates)."""

import numpy as np

from hiwar.dedup import NearDupIndex, decision_threshold, similar_pairs

LETTERS = list("ابتثجحخدذرزسشصضطظعغفقكلمنهوي")


def shingles(text, n=5):
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def pairs(rng, low, high, count):
    """(a, b, true Jaccard) with the similarity drawn into [low, high) by editing words of a."""
    found = []
    while len(found) < count:
        words = ["".join(rng.choice(LETTERS, size=rng.integers(3, 8))) for _ in range(120)]
        edited = list(words)
        for i in rng.choice(len(words), size=int(rng.uniform(0.02, 0.3) * len(words)), replace=False):
            edited[i] = "".join(rng.choice(LETTERS, size=rng.integers(3, 8)))
        a, b = " ".join(words), " ".join(edited)
        j = len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b))
        if low <= j < high:
            found.append((a, b, j))
    return found


def detected(found):
    hits = 0
    for a, b, _ in found:
        index = NearDupIndex(0.7, 128, 5)
        index.add("a", index.signature(a))
        hits += bool(index.matches(index.signature(b)))
    return hits / len(found)


def test_pairs_just_above_the_threshold_are_caught_and_dissimilar_ones_are_not():
    rng = np.random.default_rng(0)
    assert detected(pairs(rng, 0.70, 0.76, 60)) >= 0.93
    assert detected(pairs(rng, 0.30, 0.50, 60)) <= 0.02


def test_the_decision_threshold_is_two_standard_errors_below():
    assert abs(decision_threshold(0.7, 128) - (0.7 - 2 * (0.21 / 128) ** 0.5)) < 1e-12
    assert decision_threshold(0.7, 1024) > decision_threshold(0.7, 128)


def test_the_batch_search_finds_what_the_incremental_index_finds():
    rng = np.random.default_rng(1)
    found = pairs(rng, 0.55, 0.9, 40)
    index = NearDupIndex(0.7, 128, 5)
    texts = [t for a, b, _ in found for t in (a, b)]
    signatures = np.stack([index.signature(t) for t in texts])
    incremental = set()
    for k, signature in enumerate(signatures):
        incremental |= {(int(key), k) for key in index.matches(signature)}
        index.add(str(k), signature)
    first, second = similar_pairs(signatures, 0.7)
    assert set(zip(first.tolist(), second.tolist())) == incremental
    assert 0 < len(incremental) < len(found)  # the band holds pairs on both sides of the threshold


def test_small_corpora_compare_every_pair_and_large_ones_only_lsh_candidates(monkeypatch):
    import hiwar.dedup

    rng = np.random.default_rng(2)
    found = pairs(rng, 0.35, 0.45, 12)  # far below the 0.7 that the LSH bands are cut for
    index = NearDupIndex(0.4, 128, 5)
    signatures = np.stack([index.signature(t) for a, b, _ in found for t in (a, b)])
    i, j = np.triu_indices(len(signatures), 1)
    estimate = (signatures[i] == signatures[j]).mean(axis=1)
    every = {(int(a), int(b)) for a, b, s in zip(i, j, estimate) if s >= decision_threshold(0.4, 128)}
    assert len(every) >= 6
    first, second = similar_pairs(signatures, 0.4)
    assert set(zip(first.tolist(), second.tolist())) == every  # exact below EXACT_UP_TO texts
    monkeypatch.setattr(hiwar.dedup, "EXACT_UP_TO", 0)
    first, second = similar_pairs(signatures, 0.4)
    assert set(zip(first.tolist(), second.tolist())) < every  # LSH at 5 rows a band misses most pairs at 0.4
