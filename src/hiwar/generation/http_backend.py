"""OpenAI-compatible HTTP backend: vLLM, TGI, llama.cpp server, Ollama, or a hosted API.

Async with bounded concurrency: one worker per slot (the endpoints' `concurrency` summed), each taking the
next request and sending it to the least-loaded healthy endpoint. Retries with exponential backoff and
jitter on 429, 5xx, timeouts, connection errors, malformed JSON and empty answers; a Retry-After header sets
the least wait. An endpoint that fails `eject_after` times in a row leaves the rotation for `cooldown`
seconds, then gets a single probe request before it takes full load again; requests that failed there are
retried elsewhere. The API key is read from the environment variable the params name and is scrubbed from
every error message, so it can reach no file.

Before the first request, each endpoint is asked which models it serves (GET /models). llama.cpp's server,
like the loopback, answers a request for any model name with the one model it has, so a typo in `model`
would file that model's answers under another name, in the data and in the cache: a listed endpoint that
does not serve `model` stops the stage with one line. So does a set of endpoints none of which answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from hiwar.errors import HiwarError
from hiwar.generation.base import Backend, OnResult, Request, Result


class AttemptError(Exception):
    def __init__(self, message: str, *, retryable: bool = True, endpoint_fault: bool = True,
                 retry_after: float | None = None, empty: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.endpoint_fault = endpoint_fault  # counts towards taking the endpoint out of rotation
        self.retry_after = retry_after
        self.empty = empty


@dataclass
class EndpointState:
    url: str
    limit: int
    weight: float
    key: str | None = field(repr=False)
    in_flight: int = 0
    consecutive_faults: int = 0
    ejected: bool = False
    down_until: float = 0.0
    # accounting, reported per endpoint
    answered: int = 0
    attempts: int = 0
    errors: dict = field(default_factory=dict)
    ejections: int = 0
    latencies: list = field(default_factory=list)

    def available(self, now: float) -> bool:
        if self.ejected:  # back after the cool-down, but only for one probe at a time until it answers
            return now >= self.down_until and self.in_flight == 0
        return self.in_flight < self.limit

    def stats(self) -> dict:
        lat = sorted(self.latencies)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 4)) if lat else (lambda q: None)
        return {"answered": self.answered, "attempts": self.attempts, "errors": dict(sorted(self.errors.items())),
                "ejections": self.ejections, "latency_mean": round(sum(lat) / len(lat), 4) if lat else None,
                "latency_p50": pick(0.5), "latency_p95": pick(0.95)}


class EndpointPool:
    def __init__(self, endpoints: list[EndpointState], eject_after: int, cooldown: float):
        self.endpoints = endpoints
        self.eject_after = eject_after
        self.cooldown = cooldown

    async def acquire(self) -> EndpointState:
        while True:
            now = time.monotonic()
            ready = [e for e in self.endpoints if e.available(now)]
            if ready:
                chosen = min(ready, key=lambda e: (e.in_flight + 1) / e.weight)
                chosen.in_flight += 1
                chosen.attempts += 1
                return chosen
            await asyncio.sleep(0.02)  # every slot busy or every endpoint cooling down

    def release(self, endpoint: EndpointState, error: AttemptError | None, latency: float = 0.0) -> None:
        endpoint.in_flight -= 1
        if error is None:
            endpoint.answered += 1
            endpoint.latencies.append(latency)
            endpoint.consecutive_faults = 0
            endpoint.ejected = False
            return
        kind = str(error).split(":")[0]
        endpoint.errors[kind] = endpoint.errors.get(kind, 0) + 1
        if not error.endpoint_fault:
            return
        endpoint.consecutive_faults += 1
        if endpoint.ejected or endpoint.consecutive_faults >= self.eject_after:
            endpoint.ejections += not endpoint.ejected
            endpoint.ejected = True
            endpoint.down_until = time.monotonic() + self.cooldown


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, initial: float, cap: float, retry_after: float | None, rng=random) -> float:
    """Exponential backoff with jitter (half to all of the step), never shorter than the server asked."""
    step = min(cap, initial * 2 ** attempt)
    return max(step * rng.uniform(0.5, 1.0), retry_after or 0.0)


def structured_body(schema: dict, dialect: str) -> dict:
    """The request fields that ask a server for an answer following `schema`, in its dialect."""
    if dialect == "json_schema":  # OpenAI: vLLM, the llama.cpp C++ server, TGI's OpenAI route, hosted APIs
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                             "strict": True}}}
    if dialect == "llama_cpp":  # llama-cpp-python's server turns the schema into a grammar
        return {"response_format": {"type": "json_object", "schema": schema}}
    if dialect == "ollama":
        return {"format": schema}
    raise ValueError(f"unknown structured dialect {dialect!r}")


def served_models(url: str, key: str | None, timeout: float) -> list[str] | None:
    """The model names GET url/models lists, or None when the server lists none (no such route, another
    shape). Raises OSError when nothing answers at url."""
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/models", headers=headers), timeout=timeout) as r:
            listed = json.loads(r.read()).get("data")
    except urllib.error.HTTPError:  # 404, 401 ...: the requests themselves will say what is wrong
        return None
    except ValueError:
        return None
    if not isinstance(listed, list):
        return None
    return [str(m.get("id")) for m in listed if isinstance(m, dict) and m.get("id")]


class HttpBackend(Backend):
    in_process = False  # the servers compute; this process only keeps `concurrency` requests open per endpoint

    def __init__(self, params):
        super().__init__(params)
        self.http = params.http
        self.endpoints = []
        for n, ep in enumerate(self.http.endpoints):
            key = None
            if ep.api_key_env:
                key = os.environ.get(ep.api_key_env)
                if not key:
                    raise HiwarError(f"params.yaml: {self.section}.http.endpoints.{n}.api_key_env: environment variable "
                                     f"{ep.api_key_env} is not set (expected the API key in it)")
            self.endpoints.append(EndpointState(url=ep.base_url, limit=ep.concurrency, weight=ep.weight, key=key))
        self._secrets = [e.key for e in self.endpoints if e.key]
        self.pool = EndpointPool(self.endpoints, self.http.eject_after, self.http.cooldown)
        self._checked = False

    def check_servers(self) -> None:
        """One line and no request when no endpoint answers, or when one lists its models and `model` is not
        among them (Ollama lists `name:latest` for `name`). A server that lists nothing passes."""
        if self._checked:
            return
        unreachable = []
        for endpoint in self.endpoints:
            try:
                served = served_models(endpoint.url, endpoint.key, timeout=min(10.0, self.http.timeout))
            except OSError as exc:
                unreachable.append(f"{endpoint.url} ({getattr(exc, 'reason', exc)})")
                continue
            if served is not None and not any(self.params.model in (name, name.removesuffix(":latest"))
                                              for name in served):
                raise HiwarError(f"params.yaml: {self.section}.model: {self.params.model!r} is not served at "
                                 f"{endpoint.url} (it serves: {', '.join(served) or 'nothing'})")
        if len(unreachable) == len(self.endpoints):
            raise HiwarError(f"params.yaml: {self.section}.http.endpoints: no server answers at "
                             f"{'; '.join(unreachable)} (start it, e.g. `hiwar serve`, or fix base_url)")
        self._checked = True

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def endpoint_stats(self) -> dict:
        return {e.url: e.stats() for e in self.endpoints}

    def generate(self, requests: list[Request], on_result: OnResult) -> None:
        if requests:
            self.check_servers()
            asyncio.run(self._run(requests, on_result))

    async def _run(self, requests: list[Request], on_result: OnResult) -> None:
        import aiohttp

        pending = iter(enumerate(requests))
        slots = sum(e.limit for e in self.endpoints)
        connector = aiohttp.TCPConnector(limit=0)  # the pool bounds concurrency, per endpoint

        async with aiohttp.ClientSession(connector=connector) as session:
            async def worker():
                for index, request in pending:  # one shared iterator: each request taken exactly once
                    on_result(index, await self._with_retries(session, request))

            await asyncio.gather(*(worker() for _ in range(min(slots, len(requests)))))

    async def _with_retries(self, session, request: Request) -> Result:
        last_error, empty = "", 0
        for attempt in range(self.http.max_retries + 1):
            endpoint = await self.pool.acquire()
            started = time.perf_counter()
            try:
                text, finish, tokens_in, tokens_out = await self._attempt(session, endpoint, request)
            except AttemptError as exc:
                self.pool.release(endpoint, exc)
                last_error, empty = self._scrub(f"{exc} ({endpoint.url})"), empty + exc.empty
                if not exc.retryable or attempt == self.http.max_retries:
                    return Result("", "error", error=last_error, attempts=attempt + 1, empty_answers=empty)
                await asyncio.sleep(backoff_delay(attempt, self.http.backoff_initial, self.http.backoff_max,
                                                  exc.retry_after))
                continue
            latency = time.perf_counter() - started
            self.pool.release(endpoint, None, latency)
            return Result(text, finish, tokens_in, tokens_out, attempts=attempt + 1, empty_answers=empty,
                          endpoint=endpoint.url, latency=round(latency, 4))
        raise AssertionError("unreachable")

    async def _attempt(self, session, endpoint: EndpointState, request: Request):
        import aiohttp

        p = self.decoding
        body = {"model": self.params.model, "max_tokens": p.max_new_tokens, "temperature": p.temperature, "top_p": p.top_p,
                "seed": request.seed, "n": 1}
        if p.stop:
            body["stop"] = list(p.stop)
        if request.schema:
            body.update(structured_body(json.loads(request.schema), p.structured))
        if request.chat:
            url, body["messages"] = f"{endpoint.url}/chat/completions", [{"role": "user", "content": request.prompt}]
        else:
            url, body["prompt"] = f"{endpoint.url}/completions", request.prompt
        headers = {"Authorization": f"Bearer {endpoint.key}"} if endpoint.key else {}
        try:
            async with session.post(url, json=body, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=self.http.timeout)) as response:
                status, raw = response.status, await response.read()
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            raise AttemptError(f"timeout: no answer within {self.http.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise AttemptError(f"connection: {exc.__class__.__name__}: {exc}") from None

        snippet = raw[:200].decode("utf-8", "replace").replace("\n", " ")
        if status == 429:
            raise AttemptError(f"HTTP 429: {snippet}", endpoint_fault=False, retry_after=retry_after)
        if status >= 500 and request.schema and b"response_format" in raw:
            # llama-cpp-python answers a response_format it does not know with 500: no retry can help
            raise AttemptError(f"HTTP {status}: {snippet} (the server refused the JSON schema's form: try "
                               f"{self.section}.structured: llama_cpp or json_schema)", retryable=False,
                               endpoint_fault=False)
        if status >= 500 or status == 408:
            raise AttemptError(f"HTTP {status}: {snippet}", retry_after=retry_after)
        if status >= 400:  # our request is wrong (bad model name, bad key): retrying cannot help
            raise AttemptError(f"HTTP {status}: {snippet}", retryable=False, endpoint_fault=False)
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"] if request.chat else choice["text"]
            if text is not None and not isinstance(text, str):
                raise TypeError("text is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise AttemptError(f"malformed: {exc.__class__.__name__} reading {snippet!r}") from None
        if not text or not text.strip():
            raise AttemptError("empty: the answer has no text", endpoint_fault=False, empty=True)
        usage = data.get("usage") or {}
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return text, finish, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
