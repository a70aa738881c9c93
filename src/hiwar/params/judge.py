"""The `judge` section: an LLM judge through the generation backends, cache and accounting."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hiwar.params.calls import ModelCalls

class JudgeParams(ModelCalls):
    # none: no judge configured (the tiny profile: its stand-in generator cannot judge); the stage then
    # writes {"status": "not judged"} and never a score. `template`: src/hiwar/judge/templates/<template>.<language>.j2
    backend: Literal["none", "transformers", "http", "vllm"]
    language: Literal["ar", "en"]  # the language the judge is instructed in
    criteria: list[str] = Field(min_length=1)  # the rubric's criteria (src/hiwar/judge/templates/rubric.yaml)
    parse_retries: int = Field(ge=0)  # a malformed answer is asked again (new sample index) this many times
    min_score: int | None = Field(ge=1, le=5)  # gate: a conversation with any criterion below it is rejected
    pairwise: bool  # compare the evaluated models' replies pairwise (both orders)
    rate_items: bool  # score the blinded human-rating items, for judge-vs-human agreement
    bootstrap: int = Field(ge=10)
    structured: Literal["none", "json_schema", "llama_cpp", "ollama"] = "json_schema"  # the rubric as a schema


SECTION = JudgeParams
