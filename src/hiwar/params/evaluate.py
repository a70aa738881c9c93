"""The `evaluate` section: perplexity, replies and the embedding score on the test split."""

from __future__ import annotations

from pydantic import Field

from hiwar.params.base import Section

class Baseline(Section):
    path: str  # a local directory or hub id of an instruction-tuned model with its own chat template
    trust_remote_code: bool


class EvaluateParams(Section):
    seed: int
    max_conversations: int | None = Field(default=None, ge=1)  # null: the whole test split
    max_new_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    encoder: str
    bootstrap: int = Field(ge=10)
    baselines: dict[str, Baseline]
    stride: int | None = Field(default=None, ge=1)  # perplexity windows start this far apart; null: half the context


SECTION = EvaluateParams
