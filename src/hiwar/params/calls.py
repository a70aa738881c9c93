"""How a stage asks a model: the settings the `generate` and `judge` sections share (backend, model,
decoding, cache, servers)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hiwar.params.base import Section


class Endpoint(Section):
    base_url: str  # an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    concurrency: int = Field(ge=1)  # requests in flight at once on this server
    weight: float = Field(default=1.0, gt=0)  # a bigger server takes a bigger share of the load
    api_key_env: str | None = None  # the NAME of an environment variable holding the key, never the key

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value):
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")


class HttpParams(Section):
    endpoints: list[Endpoint] = Field(min_length=1)
    timeout: float = Field(gt=0)  # seconds for one attempt
    max_retries: int = Field(ge=0)  # attempts after the first, on 429, 5xx, timeouts, bad or empty answers
    backoff_initial: float = Field(ge=0)  # seconds before the first retry; doubles each time, with jitter
    backoff_max: float = Field(ge=0)
    eject_after: int = Field(ge=1)  # consecutive failures that take an endpoint out of rotation
    cooldown: float = Field(ge=0)  # seconds out of rotation before one probe request may go there


class ModelCalls(Section):
    """How a stage asks a model (the generation backends, the response cache, the failure threshold):
    shared by `generate` and `judge`, which add their own backend choices, templates and settings."""

    backend: str
    model: str  # a local directory, a hub id, or the model name a server serves
    revision: str | None  # hub revision or served model version: part of the cache key
    template: str
    trust_remote_code: bool
    batch_size: int = Field(ge=1)
    max_new_tokens: int = Field(ge=1)
    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    stop: list[str]
    seed: int
    # Answers constrained to a JSON schema, in the form the server reads (docs/judge.md): json_schema is OpenAI's
    # response_format (vLLM, the llama.cpp C++ server, hosted APIs); llama_cpp is {"type": "json_object", "schema"}
    # (llama-cpp-python's server); ollama is Ollama's `format`; none sends no schema (free text).
    structured: Literal["none", "json_schema", "llama_cpp", "ollama"] = "none"
    cache_dir: str  # content-addressed response cache, outside the stage's outs
    max_failure_rate: float = Field(ge=0, le=1)
    http: HttpParams
