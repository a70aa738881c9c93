"""The `topup` section: a quota of kept conversations per grid cell, reached in top-up rounds after cleaning."""

from __future__ import annotations

from pydantic import Field

from hiwar.params.base import Section


class TopupParams(Section):
    quota: int = Field(ge=0)  # kept conversations wanted per cell of the grid; 0 turns top-up off
    max_rounds: int = Field(ge=0)  # top-up rounds at most (0: off)
    budget: float = Field(ge=0)  # extra requests, all rounds together, as a share of the first round's requests
    max_per_cell: int = Field(ge=1)  # requests one cell may get in one round
    min_keep_rate: float = Field(gt=0, le=1)  # a cell whose estimated keep rate falls below this is given up
    prior_weight: float = Field(ge=0)  # pseudo-requests pulling a cell's keep rate to its topic's (and a topic's to all)
    vary_persona: bool  # top-up requests take another of the grid's personas than the cell's first request


SECTION = TopupParams
