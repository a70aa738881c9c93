"""The generation stage's library side: grid rows -> rendered prompts -> cache or backend -> raw rows.

Every grid row comes back as exactly one raw row, whatever happened to it: an answer (fresh or from the
cache) or a failure with its last error. Each request's cache key hashes the model id and revision, the
decoding params, the rendered prompt and the sample index; its sampling seed derives from that key, so the
same grid asks the same questions with the same seeds on any machine, in any batch, in any order.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from functools import partial

import pandas as pd
from tqdm import tqdm

from hiwar import engine as engines
from hiwar.generation import Backend, Request, Result
from hiwar.generation.cache import ResponseCache, request_key
from hiwar.generation.grid import COLUMNS as GRID_COLUMNS
from hiwar.generation.prompts import CHAT_TEMPLATE_NAME, format_dialogue, render_prompt
from hiwar.params import GenerateParams

DECODING = ("max_new_tokens", "temperature", "top_p", "stop", "seed")
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


def plan_requests(grid: pd.DataFrame, params: GenerateParams, examples_from: list[dict], model_id: str,
                  revision: str | None) -> pd.DataFrame:
    """The grid with each row's prompt (and its short hash), cache key and sampling seed."""
    chat = params.template == CHAT_TEMPLATE_NAME
    decoding = {name: getattr(params, name) for name in DECODING}
    planned = grid.copy()
    planned["prompt"] = [render_row(row, params, examples_from) for row in grid.itertuples()]
    planned["prompt_hash"] = [hashlib.sha256(p.encode("utf-8")).hexdigest()[:16] for p in planned["prompt"]]
    planned["request_key"] = [
        request_key(model=model_id, revision=revision, decoding=decoding, prompt=prompt, chat=chat,
                    sample_index=int(index))
        for prompt, index in zip(planned["prompt"], grid["sample_index"])
    ]
    planned["request_seed"] = [int(key[:15], 16) for key in planned["request_key"]]
    return planned


class Progress:
    """conversations/s, tokens/s and ETA on one line (tqdm), updated as answers arrive."""

    def __init__(self, total: int, cached: int, desc: str = "generate"):
        self.bar = tqdm(total=total, desc=f"{desc} ({cached} cached)", unit="conv", dynamic_ncols=True,
                        smoothing=0.05)
        self.started, self.tokens = time.perf_counter(), 0

    def update(self, result: Result) -> None:
        self.tokens += result.tokens_out
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(f"{self.tokens / elapsed:.0f} tok/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def answer_all(backend: Backend, requests: list[Request]) -> list[Result]:
    """One engine batch: every request's result, in request order."""
    results: list[Result | None] = [None] * len(requests)

    def keep(index: int, result: Result) -> None:
        results[index] = result

    backend.generate(requests, keep)
    return results


def ask(items: list[tuple[str, str, int]], backend: Backend, cache: ResponseCache, chat: bool,
        desc: str = "generate") -> dict[str, Result]:
    """Answer (request_key, prompt, seed) items through the cache and the backend: items whose key is cached
    are not sent; every answer received is cached at once. Returns this run's results by key (failures
    included). Shared by generation and the judge: one path to a model, one cache, one accounting."""
    unique = list({key: (key, prompt, seed) for key, prompt, seed in items}.values())  # same key: asked once
    missing = [item for item in unique if item[0] not in cache]
    requests = [Request(prompt=prompt, seed=seed, chat=chat) for _, prompt, seed in missing]

    fresh: dict[str, Result] = {}
    progress = Progress(len(requests), len(unique) - len(missing), desc)

    def on_result(index: int, result: Result) -> None:
        key, prompt, _ = missing[index]
        if key in fresh:
            raise RuntimeError(f"backend answered request {index} twice")  # a backend bug: fail loudly
        fresh[key] = result
        if result.ok:
            cache.add({"key": key, "model": backend.model_id, "revision": backend.revision,
                       "prompt_hash": hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16], "text": result.text,
                       "finish_reason": result.finish_reason, "tokens_in": result.tokens_in,
                       "tokens_out": result.tokens_out, "attempts": result.attempts, "endpoint": result.endpoint,
                       "latency": result.latency, "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        progress.update(result)

    try:
        if backend.in_process:  # a local model: its batches run on the stage's engine
            groups = backend.groups(requests)
            batches = ([requests[i] for i in group] for group in groups)
            answered = engines.current().map(answer_all, batches, setup=partial(engines.built, backend))
            for group, results in zip(groups, answered):
                for index, result in zip(group, results):
                    if result is not None:  # one left unanswered is counted below, never invented
                        on_result(index, result)
        else:
            backend.generate(requests, on_result)
    finally:
        progress.close()
        cache.close()
    if len(fresh) != len(requests):  # a backend bug, never the user's: fail loudly rather than lose rows
        raise RuntimeError(f"backend answered {len(fresh)} of {len(requests)} requests")
    return fresh


def generate(grid: pd.DataFrame, backend: Backend, params: GenerateParams, examples_from: list[dict],
             cache: ResponseCache) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rows in grid order, and per-row accounting (cache hit, attempts, empty answers) for the
    metrics. Run-specific facts stay out of the raw rows, so a resumed run writes the same rows."""
    planned = plan_requests(grid, params, examples_from, backend.model_id, backend.revision)
    chat = params.template == CHAT_TEMPLATE_NAME
    items = list(zip(planned["request_key"], planned["prompt"], planned["request_seed"]))
    fresh = ask(items, backend, cache, chat)
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


def check_failure_rate(raw: pd.DataFrame, max_rate: float, stage: str = "generate") -> str | None:
    """The stage's error message when too many requests got no answer, else None."""
    failed = raw[raw["finish_reason"].eq("error")]
    if len(raw) == 0 or len(failed) / len(raw) <= max_rate:
        return None
    common = Counter(str(e).split(" (")[0][:80] for e in failed["error"]).most_common(3)
    return (f"{stage}: {len(failed)} of {len(raw)} requests failed ({len(failed) / len(raw):.1%}, more than "
            f"{stage}.max_failure_rate {max_rate:.1%}); most common errors: "
            + "; ".join(f"{text!r} x{n}" for text, n in common)
            + ". Answers so far are cached: rerun to send only the failed requests.")


def failure_table(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.loc[raw["finish_reason"].eq("error"),
                   ["conversation_id", "cell_id", "request_key", "error"]].reset_index(drop=True)
