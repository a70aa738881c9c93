"""The generation stage's library side: grid rows -> rendered prompts -> cache or backend -> raw rows.

Every grid row comes back as exactly one raw row, whatever happened to it: an answer (fresh or from the
cache) or a failure with its last error. Keys, seeds, the cache and the backend are hiwar.generation.asking's,
shared with the judge; this module renders the grid's prompts and assembles and counts the raw rows.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from hiwar.generation import Backend
from hiwar.generation.asking import ask, plan
from hiwar.generation.cache import ResponseCache
from hiwar.generation.grid import COLUMNS as GRID_COLUMNS
from hiwar.generation.prompts import CHAT_TEMPLATE_NAME, dialogue_schema, format_dialogue, render_prompt
from hiwar.params.generate import GenerateParams

RAW_COLUMNS = ["generator", "revision", "template", "prompt", "prompt_hash", "request_key", "raw_text",
               "finish_reason", "error", "tokens_in", "tokens_out"]


def few_shot_examples(conversations: list[dict], topic: str, k: int, salt: str) -> list[str]:
    """k bundled conversations, those on the same topic first, in an order fixed by `salt` (the row's id)."""
    if k == 0:
        return []
    rank = sorted(conversations, key=lambda c: (
        c["topic"] != topic, hashlib.sha256(f"{salt}:{c['id']}".encode()).hexdigest()))
    return [format_dialogue(c["messages"]) for c in rank[:k]]


def render_row(row, params: GenerateParams, examples_from: list[dict]) -> str:
    """One grid row's prompt: the row carries its wording (topic, country, persona); `examples_from` are the
    bundled conversations few-shot examples are drawn from."""
    return render_prompt(
        params.template,
        topic_ar=row.topic_ar,
        topic_description=row.topic_description,
        country_ar=row.country_ar,
        persona_ar=row.persona_ar,
        exchanges=int(row.exchanges),
        examples=few_shot_examples(examples_from, row.topic, params.few_shot, row.conversation_id),
    )


def plan_requests(grid: pd.DataFrame, params: GenerateParams, examples_from: list[dict],
                  backend: Backend) -> pd.DataFrame:
    """The grid with each row's prompt (and its short hash), cache key, sampling seed and request. With
    `generate.structured` the answer's shape is a JSON schema holding exactly the row's number of exchanges."""
    chat = params.template == CHAT_TEMPLATE_NAME
    planned = grid.copy()
    planned["prompt"] = [render_row(row, params, examples_from) for row in grid.itertuples()]
    planned["prompt_hash"] = [hashlib.sha256(p.encode("utf-8")).hexdigest()[:16] for p in planned["prompt"]]
    pairs = [plan(backend, prompt, chat=chat, sample_index=int(index), schema=dialogue_schema(int(exchanges), params.max_turn_chars))
             for prompt, index, exchanges in zip(planned["prompt"], grid["sample_index"], grid["exchanges"])]
    planned["request_key"] = [key for key, _ in pairs]
    planned["request_seed"] = [request.seed for _, request in pairs]
    planned["request"] = [request for _, request in pairs]
    return planned


def generate(grid: pd.DataFrame, backend: Backend, params: GenerateParams, examples_from: list[dict],
             cache: ResponseCache) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rows in grid order, and per-row accounting (cache hit, attempts, empty answers) for the
    metrics. Run-specific facts stay out of the raw rows, so a resumed run writes the same rows."""
    planned = plan_requests(grid, params, examples_from, backend)
    fresh = ask(list(zip(planned["request_key"], planned["request"])), backend, cache)
    return _assemble(planned, fresh, cache, backend, params)


def _assemble(planned, fresh, cache, backend, params) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, accounting = [], []
    for row in planned.itertuples():
        result = fresh.get(row.request_key)
        record = None if result is not None and not result.ok else cache.get(row.request_key)
        if record is not None:
            answer = dict(raw_text=record["text"], finish_reason=record["finish_reason"], error=None,
                          tokens_in=record["tokens_in"], tokens_out=record["tokens_out"])
        else:
            answer = dict(raw_text="", finish_reason="error", error=result.error, tokens_in=0, tokens_out=0)
        rows.append(dict(generator=backend.model_id, revision=backend.revision, template=params.template,
                         prompt=row.prompt, prompt_hash=row.prompt_hash, request_key=row.request_key,
                         **answer))
        accounting.append(dict(cached=result is None, attempts=result.attempts if result else 0,
                               empty_answers=result.empty_answers if result else 0))
    raw = pd.concat([planned[GRID_COLUMNS]
                     .reset_index(drop=True), pd.DataFrame(rows, columns=RAW_COLUMNS)], axis=1)
    return raw, pd.DataFrame(accounting)


def _counts(raw: pd.DataFrame) -> dict:
    """What the dataset got: the same for a run from the cache as for one that sent every request."""
    failed = raw["finish_reason"].eq("error")
    return {
        "requested": int(len(raw)),
        "succeeded": int((~failed).sum()),
        "failed": int(failed.sum()),
        "empty": int((failed & raw["error"].fillna("").str.startswith("empty")).sum()),  # even after retries
        "hit_max_tokens": int(raw["finish_reason"].eq("length").sum()),
        "tokens_in": int(raw["tokens_in"].sum()),
        "tokens_out": int(raw["tokens_out"].sum()),
    }


def _run_counts(accounting: pd.DataFrame) -> dict:
    """How this run got it: cache hits, requests sent, retries."""
    return {
        "cache_hits": int(accounting["cached"].sum()),
        "sent": int((~accounting["cached"]).sum()),
        "retried": int((accounting["attempts"] > 1).sum()),
        "retries": int((accounting["attempts"] - 1).clip(lower=0).sum()),
        "empty_retried": int(accounting["empty_answers"].sum()),  # empty answers that were asked again
    }


def summarize(raw: pd.DataFrame, accounting: pd.DataFrame, seconds: float,
              endpoints: dict | None = None) -> tuple[dict, dict]:
    """(metrics/generate.json: the totals, then per topic; this run's facts: cache hits, requests sent,
    retries, wall time and, for http, per endpoint). raw and accounting share one index (grid order)."""
    metrics = _counts(raw)
    metrics["per_topic"] = {topic: _counts(rows) for topic, rows in raw.groupby("topic")}
    facts = _run_counts(accounting) | {"wall_seconds": round(seconds, 2)}
    if endpoints:
        facts["per_endpoint"] = endpoints
    return metrics, facts


def failure_table(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.loc[raw["finish_reason"].eq("error"),
                   ["conversation_id", "cell_id", "request_key", "error"]].reset_index(drop=True)
