"""The `grid` section: topics x countries x dialogue shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hiwar.params.base import Section

class GridParams(Section):
    seed: int
    conversations: int = Field(ge=1)
    topics: Literal["all"] | list[str]
    countries: Literal["all"] | list[str]
    exchanges: list[int] = Field(min_length=1)
    personas: dict[str, str] = Field(min_length=1)

    @field_validator("exchanges")
    @classmethod
    def _exchanges_positive(cls, value):
        if any(n < 1 for n in value):
            raise ValueError("every number of exchanges must be at least 1")
        return value


SECTION = GridParams
