"""The `clean` section: the rules a raw generation must pass, and near-duplicate removal."""

from __future__ import annotations

from pydantic import Field, field_validator

from hiwar.params.base import Section

class CleanParams(Section):
    min_exchanges: int = Field(ge=1)
    max_exchanges: int = Field(ge=1)
    min_arabic_ratio: float = Field(ge=0, le=1)
    max_latin_words: int = Field(ge=0)
    # Latin names, model numbers and units count as neutral in the Arabic ratio up to this share of a turn's letters.
    max_name_share: float = Field(default=0.5, ge=0, le=1)
    # Identify each conversation's language (fastText lid.176) and reject Arabic-script text in another language.
    language_id: bool = True
    # Reason codes of the rules (cleaning/rules.py) not applied: only for a profile whose model cannot follow an
    # Arabic instruction at all (smollm2 recites it: `echo`), so that its path through the pipeline can be run.
    skip_reasons: list[str] = []
    min_turn_chars: int = Field(ge=1)
    max_turn_chars: int = Field(ge=1)
    repetition_ngram: int = Field(ge=1)
    repetition_min_words: int = Field(ge=1)
    max_repeated_ngram_ratio: float = Field(ge=0, le=1)
    near_dup_threshold: float = Field(gt=0, le=1)
    minhash_perm: int = Field(ge=16)
    shingle_chars: int = Field(ge=1)

    @field_validator("minhash_perm")
    @classmethod
    def _power_of_two(cls, value):
        if value & (value - 1):
            raise ValueError("must be a power of two (one-permutation MinHash bins)")
        return value


SECTION = CleanParams
