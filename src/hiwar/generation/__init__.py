"""Generation backends, registered by name (params: generate.backend), one file each."""

from __future__ import annotations

from hiwar.generation.base import Backend, Decoding, Request, Result
from hiwar.params.calls import ModelCalls


def _transformers(params):
    from hiwar.generation.transformers_backend import TransformersBackend

    return TransformersBackend(params)


def _http(params):
    from hiwar.generation.http_backend import HttpBackend

    return HttpBackend(params)


def _vllm(params):
    from hiwar.generation.vllm_backend import VllmBackend

    return VllmBackend(params)


def _fake(params):
    from hiwar.generation.fake import FakeBackend

    return FakeBackend(params)


# Imported lazily: choosing the fake or http backend never pays for importing torch, nor vllm for anyone.
BACKENDS = {"transformers": _transformers, "http": _http, "vllm": _vllm, "fake": _fake}


def get_backend(params: ModelCalls, section: str = "generate") -> Backend:
    """The backend `params.backend` names, for the generate or the judge section."""
    backend = BACKENDS[params.backend](params)
    backend.section = section
    return backend


__all__ = ["Backend", "Decoding", "Request", "Result", "get_backend", "BACKENDS"]
