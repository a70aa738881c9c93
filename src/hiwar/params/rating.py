"""The `rating` section: human-rating sheets and the rating page."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hiwar.params.base import Section

class RatingParams(Section):
    seed: int
    sample: int = Field(ge=1)  # held-out turns per sheet; each comes with every model's reply
    criteria: list[str] = Field(min_length=1)
    scale: int = Field(ge=2)  # scores are integers from 1 to scale
    bootstrap: int = Field(ge=10)
    # The rating page (`hiwar rate serve`); the CSV sheets follow the same mode.
    mode: Literal["likert", "pairwise"] = "likert"  # pairwise: two replies to one turn, answer A, B or tie
    repeat_share: float = Field(default=0.1, ge=0, le=0.5)  # hidden repeats per rater, for self-agreement
    gold: str = ""  # optional CSV (item, criterion, expected) of items with a known answer
    host: str = "127.0.0.1"  # only this machine unless told otherwise
    port: int = Field(default=8765, ge=0, le=65535)


SECTION = RatingParams
