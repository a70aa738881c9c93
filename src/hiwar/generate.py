"""The generation stage's library side: grid rows -> rendered prompts -> backend -> raw rows with provenance.

Every grid row comes back as exactly one raw row, whatever happened to it; failures carry their reason.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from hiwar.generation import Backend, Request
from hiwar.params import GenerateParams, GridParams
from hiwar.prompts import render_prompt
from hiwar.seed import Seed


def render_row(row, template: str, seed: Seed, personas: dict[str, str]) -> str:
    topic = seed.topics.loc[row.topic]
    return render_prompt(
        template,
        topic_ar=topic.name_ar,
        topic_description=topic.description_ar,
        country_ar=seed.countries.loc[row.country].name_ar,
        persona_ar=personas.get(row.persona),
        exchanges=int(row.exchanges),
    )


def generate(grid: pd.DataFrame, backend: Backend, params: GenerateParams, grid_params: GridParams,
             seed: Seed) -> pd.DataFrame:
    prompts = [render_row(row, params.template, seed, grid_params.personas) for row in grid.itertuples()]
    requests = [Request(prompt=p, seed=int(s)) for p, s in zip(prompts, grid["request_seed"])]
    results = backend.generate(requests)
    if len(results) != len(requests):  # a backend bug, never the user's: fail loudly rather than misalign
        raise RuntimeError(f"backend returned {len(results)} results for {len(requests)} requests")
    raw = grid.copy()
    raw["generator"] = backend.model_id
    raw["template"] = params.template
    raw["prompt"] = prompts
    raw["prompt_hash"] = [hashlib.sha256(p.encode()).hexdigest()[:16] for p in prompts]
    raw["raw_text"] = [r.text for r in results]
    raw["finish_reason"] = [r.finish_reason for r in results]
    raw["error"] = [r.error for r in results]
    raw["tokens_in"] = [r.tokens_in for r in results]
    raw["tokens_out"] = [r.tokens_out for r in results]
    return raw


def summarize(raw: pd.DataFrame, seconds: float) -> dict:
    counts = raw["finish_reason"].value_counts()
    return {
        "requested": int(len(raw)),
        "succeeded": int(counts.get("stop", 0) + counts.get("length", 0)),
        "failed": int(counts.get("error", 0)),
        "empty": int((raw["raw_text"].str.strip() == "").sum()),
        "hit_max_tokens": int(counts.get("length", 0)),
        "tokens_in": int(raw["tokens_in"].sum()),
        "tokens_out": int(raw["tokens_out"].sum()),
        "wall_seconds": round(seconds, 2),
    }
