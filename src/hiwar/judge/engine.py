"""Asking the judge: prompts -> response cache or backend -> strictly parsed answers.

The judge reaches its model the way generation does (hiwar.generation.asking: the same backends, the same
HTTP client with its retries on 429 and 5xx, the same cache keys and seeds, the same response cache and the
same failure threshold). On top of it,
one thing is the judge's own: an answer that does not parse is asked again under a new sample index, so
with a new cache key and a new sampling seed, up to `judge.parse_retries` times; if it is still malformed
the item is a judge failure with its reason, never a score. A rerun finds every answer, malformed ones
included, in the cache, takes the same path and sends nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from hiwar.generation import Backend, get_backend
from hiwar.generation.asking import ask, plan
from hiwar.generation.cache import ResponseCache
from hiwar.judge.parse import Malformed
from hiwar.params.judge import JudgeParams


@dataclass(frozen=True)
class Task:
    id: str
    prompt: str
    schema: dict | None = None  # the answer's JSON schema, sent when judge.structured says how


@dataclass
class Answer:
    id: str
    value: Any = None  # the parsed answer; None when the judge failed on this item
    status: str = "judged"  # judged | malformed (after every retry) | request_failed
    error: str | None = None
    asked: int = 0  # answers received or read from the cache for this item (malformed ones included)
    malformed: int = 0  # of those, how many did not parse
    request_key: str | None = None  # the key of the answer that was used (or of the last one tried)


def open_judge(params: JudgeParams) -> tuple[Backend, ResponseCache]:
    """The judge's model and cache. Its prompts are chat messages: the server's chat endpoint or the local
    model's own chat template wraps them."""
    return get_backend(params, "judge"), ResponseCache(params.cache_dir)


def judge_all(tasks: list[Task], parse: Callable[[str], Any], backend: Backend, cache: ResponseCache,
              params: JudgeParams, desc: str = "judge") -> tuple[list[Answer], dict]:
    """One Answer per task, in task order, and the accounting: sent, cache hits and retries (this run's), and
    malformed answers, of which off_schema_answers came back outside the schema they were sent with (these two
    are read from every answer, cached or not, so a rerun gives the same)."""
    answers = {t.id: Answer(t.id) for t in tasks}
    if len(answers) != len(tasks):
        raise ValueError("task ids must be unique")
    pending, facts = list(tasks), Counter(off_schema_answers=0)  # 0 too: the same on a rerun from the cache
    for attempt in range(params.parse_retries + 1):
        if not pending:
            break
        planned = [plan(backend, t.prompt, chat=True, sample_index=attempt, schema=t.schema) for t in pending]
        keys, sent = [key for key, _ in planned], dict(planned)
        fresh = ask(planned, backend, cache, desc=f"{desc} (try {attempt + 1})")
        facts["sent"] += len(fresh)
        facts["cache_hits"] += len(set(keys)) - len(fresh)
        facts["retries"] += sum(r.attempts - 1 for r in fresh.values())
        retry = []
        for task, key in zip(pending, keys):
            answer, record = answers[task.id], cache.get(key)
            answer.request_key = key
            if record is None:  # the backend gave up on this request (its own retries spent)
                answer.status, answer.error = "request_failed", fresh[key].error
                continue
            answer.asked += 1
            try:
                answer.value, answer.status, answer.error = parse(record["text"]), "judged", None
            except Malformed as exc:
                answer.malformed += 1
                # the server was given the schema and answered outside it (it ignored the field, or drifted)
                facts["off_schema_answers"] += sent[key].schema is not None
                answer.status, answer.error = "malformed", f"malformed: {exc}"
                retry.append(task)
        pending = retry
    facts["malformed_answers"] = sum(a.malformed for a in answers.values())
    return [answers[t.id] for t in tasks], dict(facts)


def failure_frame(answers: list[Answer]) -> pd.DataFrame:
    """The answers in the shape hiwar.generation.asking.check_failure_rate reads."""
    return pd.DataFrame({"finish_reason": ["stop" if a.status == "judged" else "error" for a in answers],
                         "error": [a.error for a in answers]})
