"""The interface every generation backend implements.

A backend gets a list of requests and reports one result per request through a callback, as soon as each
one is done and in any order, so the caller can store every answer the moment it exists (a kill loses at
most what was in flight). A backend never drops a request: a failure is a result with finish_reason
"error" and the last error message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Literal

from hiwar.params.calls import ModelCalls


@dataclass(frozen=True)
class Request:
    prompt: str  # the whole prompt, or with chat=True the user message the model's chat template wraps
    seed: int  # sampling seed of this request alone, whatever batch or server it lands in
    chat: bool = False
    schema: str | None = None  # a JSON schema (as JSON text) the answer must follow, when the stage asks for one


@dataclass(frozen=True)
class Result:
    text: str
    finish_reason: Literal["stop", "length", "error"]
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None  # the last error; set when finish_reason is "error"
    attempts: int = 1
    empty_answers: int = 0  # attempts answered with empty text (retried like errors)
    endpoint: str | None = None  # which server answered (http backend)
    latency: float = 0.0  # seconds of the attempt that answered

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"


OnResult = Callable[[int, Result], None]


@dataclass(frozen=True)
class Decoding:
    """How every request is decoded: the fields the generate and judge sections share. Part of each cache key."""

    max_new_tokens: int
    temperature: float  # 0: greedy
    top_p: float
    stop: tuple[str, ...]
    seed: int
    structured: str = "none"  # how a request's JSON schema reaches the server (none: it is not sent)

    @classmethod
    def of(cls, params: ModelCalls) -> Decoding:
        return cls(params.max_new_tokens, params.temperature, params.top_p, tuple(params.stop), params.seed,
                   params.structured)

    def key_fields(self) -> dict:
        # Exactly what cache keys have always hashed (stop as a list): another shape would re-ask every answer.
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "stop": list(self.stop), "seed": self.seed}


class Backend(ABC):
    """Built from the settings generate and judge share (ModelCalls): which model, where, and its Decoding."""

    def __init__(self, params: ModelCalls):
        self.params = params
        self.decoding = Decoding.of(params)

    @property
    def model_id(self) -> str:
        """What generated the text, recorded with every row and part of the cache key."""
        return self.params.model

    @property
    def revision(self) -> str | None:
        """Which version of the model: part of the cache key, so new weights never reuse old answers."""
        return self.params.revision

    section = "generate"  # the params section it was built from, named in its error messages

    # A backend that computes in this process (a local model) hands its batches to the stage's engine, which
    # may run them in other processes or machines; one that waits on servers (http) fans out on its own.
    in_process = True

    @abstractmethod
    def generate(self, requests: list[Request], on_result: OnResult) -> None:
        """Call on_result(index, result) exactly once for every request."""

    def groups(self, requests: list[Request]) -> list[list[int]]:
        """The batches this backend would form from `requests`, as request indexes: the engine runs each as
        one unit, so a request's answer never depends on which engine ran it."""
        return [list(range(len(requests)))] if requests else []

    def __reduce__(self):
        # Shipped to an engine's worker, a backend is built again there from its params (a model is loaded
        # where it runs, never pickled).
        return type(self), (self.params,)

    def endpoint_stats(self) -> dict:
        """Per-server accounting, for backends that talk to servers."""
        return {}
