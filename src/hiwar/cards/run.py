"""The card stage's work: gather the facts, write README.md and croissant.json beside the splits (both or
neither), and return the stage's metrics."""

from __future__ import annotations

import json
from contextlib import ExitStack

from hiwar.cards import croissant, hf
from hiwar.cards.facts import Facts, Inputs, Params, gather
from hiwar.io import atomic_path

CARD = "README.md"
CROISSANT = "croissant.json"


def render(facts: Facts) -> dict[str, str]:
    """File name -> text of the two cards."""
    metadata = croissant.croissant(facts, hf.COLUMNS)
    return {CARD: hf.render(facts), CROISSANT: json.dumps(metadata, ensure_ascii=False, indent=2) + "\n"}


def write_cards(inputs: Inputs, params: Params, folder: str, batch_rows: int = 2048) -> dict:
    facts = gather(inputs, params, folder, batch_rows)
    texts = render(facts)
    with ExitStack() as stack:  # renamed into place together, after both are written
        for name, text in texts.items():
            stack.enter_context(atomic_path(inputs.split / name)).write_text(text, encoding="utf-8")
    return {**facts.stats.metrics(), "bytes": {s: x.bytes for s, x in facts.files.items()}}
