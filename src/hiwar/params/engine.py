"""The `engine` section, read by every stage: what runs its batches (hiwar.engine). It changes no output, so
no stage lists it in its DVC params."""

from __future__ import annotations

from pydantic import Field

from hiwar.params.base import Section

class EngineParams(Section):
    name: str = "local"  # a name in hiwar.engine.ENGINES
    workers: int = Field(default=1, ge=1)  # local: 1 runs in the stage's process; more, in worker processes
    in_flight: int = Field(default=4, ge=1)  # batches handed out and not yet collected: bounds memory
    batch_rows: int = Field(default=2048, ge=1)  # rows per batch where a step cuts a table into batches


SECTION = EngineParams
