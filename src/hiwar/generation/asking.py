"""The one path to a model, for generation and the judge alike: requests -> response cache or backend.

A request's cache key hashes the model id and revision, the backend's Decoding, the prompt, whether it is a
chat message, its sample index and the JSON schema its answer must follow (when one is sent); its sampling
seed derives from that key (`plan`). So the same questions
get the same keys and seeds on any machine, in any batch, in any order, and a rerun finds every answer in the
cache. Local models run their batches on the stage's engine; servers are fanned out by the http backend.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from functools import partial

import pandas as pd
from tqdm import tqdm

from hiwar import engine as engines
from hiwar.generation.base import Backend, Request, Result
from hiwar.generation.cache import ResponseCache, request_key


def plan(backend: Backend, prompt: str, *, chat: bool, sample_index: int,
         schema: dict | None = None) -> tuple[str, Request]:
    """A request and its cache key, the seed derived from the key: the one rule every stage that asks a model
    follows. `schema` is sent only when the section's `structured` says how; it then joins the key, so a new
    schema (or a new way of sending it) asks again, and free-text requests keep the keys they always had."""
    decoding = backend.decoding.key_fields()
    sent = json.dumps(schema, ensure_ascii=False, sort_keys=True) if schema and backend.decoding.structured != "none" \
        else None
    if sent:
        decoding |= {"schema": sent, "structured": backend.decoding.structured}
    key = request_key(model=backend.model_id, revision=backend.revision, decoding=decoding, prompt=prompt, chat=chat,
                      sample_index=sample_index)
    return key, Request(prompt=prompt, seed=int(key[:15], 16), chat=chat, schema=sent)


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


def ask(planned: list[tuple[str, Request]], backend: Backend, cache: ResponseCache,
        desc: str = "generate") -> dict[str, Result]:
    """Answer (request_key, request) pairs (from `plan`) through the cache and the backend: requests whose key is
    cached are not sent; every answer received is cached at once. Returns this run's results by key (failures
    included). Shared by generation and the judge: one path to a model, one cache, one accounting."""
    unique = list(dict(planned).items())  # the same key is asked once
    missing = [(key, request) for key, request in unique if key not in cache]
    requests = [request for _, request in missing]

    fresh: dict[str, Result] = {}
    progress = Progress(len(requests), len(unique) - len(missing), desc)

    def on_result(index: int, result: Result) -> None:
        key, request = missing[index]
        prompt = request.prompt
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
