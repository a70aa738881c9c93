"""The `generate` section: the generator, its decoding and servers, and the prompt template."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hiwar.params.calls import ModelCalls

class GenerateParams(ModelCalls):
    backend: Literal["transformers", "http", "vllm", "fake"]
    few_shot: int = Field(ge=0)  # bundled conversations on the same topic shown in the prompt
    # With `structured`: each turn of the dialogue schema at most this long, so that a weak model's answer closes
    # inside max_new_tokens; null: no limit.
    max_turn_chars: int | None = Field(default=None, ge=1)


SECTION = GenerateParams
