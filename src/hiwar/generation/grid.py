"""The prompt grid: topic x country cells, each given a number of conversations and a dialogue shape.

Allocation rule (deterministic for a seed): cells are put in a seeded round-robin order over topics (a
random country of every topic in turn), so any prefix of the order covers the topics as evenly as possible.
Every cell gets `conversations // cells` conversations and the first `conversations % cells` cells in that
order get one more. At paper scale, 43,316 over 93 x 151 = 14,043 cells gives every cell 3 and 1,187 cells
a fourth; the tiny profile's 240 conversations land on 240 cells spread over all topics.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError
from hiwar.params.grid import GridParams
from hiwar.bundled import Bundled

COLUMNS = ["conversation_id", "cell_id", "topic", "country", "sample_index", "exchanges", "persona"]
# The wording a prompt needs, resolved here so that the generate stage reads the grid file and nothing else.
TEXT_COLUMNS = ["topic_ar", "topic_description", "country_ar", "persona_ar"]


def _pick(ids: list[str], wanted, table: pd.DataFrame, key: str) -> list[str]:
    if wanted == "all":
        return ids
    unknown = [w for w in wanted if w not in table.index]
    if unknown:
        raise HiwarError(f"params.yaml: grid.{key}: unknown id {unknown[0]!r} (expected ids from data/bundled/{key}.csv)")
    return list(wanted)


def cell_order(topics: list[str], countries: list[str], rng: np.random.Generator) -> list[tuple[str, str]]:
    """All topic x country cells in a seeded round-robin order over topics."""
    per_topic = [[(t, c) for c in rng.permutation(countries)] for t in rng.permutation(topics)]
    return [cells[i] for i in range(len(countries)) for cells in per_topic]


def stable_id(*parts) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def build_grid(params: GridParams, bundled: Bundled) -> pd.DataFrame:
    topics = _pick(list(bundled.topics.index), params.topics, bundled.topics, "topics")
    countries = _pick(list(bundled.countries.index), params.countries, bundled.countries, "countries")
    rng = np.random.default_rng(params.seed)
    cells = cell_order(topics, countries, rng)
    base, extra = divmod(params.conversations, len(cells))
    rows = []
    personas = list(params.personas)
    for rank, (topic, country) in enumerate(cells):
        for sample_index in range(base + (rank < extra)):
            cell_id = f"{topic}:{country}"
            rows.append({
                "conversation_id": stable_id(params.seed, cell_id, sample_index),
                "cell_id": cell_id,
                "topic": topic,
                "country": country,
                "sample_index": sample_index,
                "exchanges": int(rng.choice(params.exchanges)),
                "persona": str(rng.choice(personas)),
            })
    grid = pd.DataFrame(rows, columns=COLUMNS)
    grid["topic_ar"] = bundled.topics.loc[grid["topic"], "name_ar"].to_numpy()
    grid["topic_description"] = bundled.topics.loc[grid["topic"], "description_ar"].to_numpy()
    grid["country_ar"] = bundled.countries.loc[grid["country"], "name_ar"].to_numpy()
    grid["persona_ar"] = grid["persona"].map(params.personas)
    return grid
