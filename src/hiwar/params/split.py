"""The `split` section: leak-free train / validation / test."""

from __future__ import annotations

from pydantic import Field, model_validator

from hiwar.params.base import Section

class SplitParams(Section):
    seed: int
    validation: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)
    # Conversations at least this similar (MinHash Jaccard on character n-grams) stay in one split.
    leak_threshold: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _leaves_train(self):
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must be below 1 so that train is non-empty")
        return self


SECTION = SplitParams
