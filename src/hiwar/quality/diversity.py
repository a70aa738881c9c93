"""How varied the kept conversations are, for any grouping (topic, country, generator, or all):
distinct-n over normalised words, symmetric self-BLEU on a seeded sample, embedding dispersion, and the
share whose opening user turn another conversation shares word for word (after normalisation)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
from sacrebleu.metrics import BLEU

from hiwar.arabic import match_key


def distinct_n(hashes: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Distinct n-grams over all n-grams, for each group (NaN for a group without n-grams). `hashes` are
    the corpus's n-gram hashes and `groups` the group of the conversation each comes from."""
    total = np.bincount(groups, minlength=n_groups)
    pairs = pd.DataFrame({"g": groups, "h": hashes}).drop_duplicates()
    distinct = np.bincount(pairs["g"].to_numpy(), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.round(distinct / total, 4)


_BLEU = BLEU(tokenize="none", effective_order=True)


def self_bleu(texts: list[str], sample: int, seed: int) -> float | None:
    """Mean BLEU (0-100) over the pairs of a seeded sample of `sample` texts, each pair scored both ways
    (a against b and b against a), so the figure does not depend on which text plays hypothesis.
    Texts are already normalised words joined by spaces. None for fewer than two texts."""
    if len(texts) < 2:
        return None
    rng = np.random.default_rng(seed)
    chosen = [texts[i] for i in sorted(rng.choice(len(texts), size=min(sample, len(texts)), replace=False))]
    scores = [(_BLEU.sentence_score(a, [b]).score + _BLEU.sentence_score(b, [a]).score) / 2
              for a, b in combinations(chosen, 2)]
    return round(float(np.mean(scores)), 3)


def dispersion(vectors: np.ndarray) -> float | None:
    """Mean pairwise cosine distance of L2-normalised embeddings (0 = all the same; None below two)."""
    n = len(vectors)
    if n < 2:
        return None
    cosines = vectors @ vectors.T
    return round(float(1 - (cosines.sum() - np.trace(cosines)) / (n * (n - 1))), 4)


def opening_keys(conversations) -> list[str]:
    """The first user turn of each conversation, in match form."""
    return [match_key(next(m["content"] for m in messages if m["role"] == "user")) for messages in conversations]


def shared_openings(keys: list[str]) -> np.ndarray:
    """For each conversation: whether another conversation opens with the same (normalised) user turn."""
    counts = Counter(keys)
    return np.array([counts[k] > 1 for k in keys], dtype=bool)
