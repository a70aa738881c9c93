"""Generation backends, registered by name (params: generate.backend)."""

from __future__ import annotations

from hiwar.generation.base import Backend, Request, Result
from hiwar.params import GenerateParams


def _transformers(params):
    from hiwar.generation.transformers_backend import TransformersBackend

    return TransformersBackend(params)


def _fake(params):
    from hiwar.generation.fake import FakeBackend

    return FakeBackend(params)


# Imported lazily so that choosing the fake backend never pays for importing torch.
BACKENDS = {"transformers": _transformers, "fake": _fake}


def get_backend(params: GenerateParams) -> Backend:
    return BACKENDS[params.backend](params)


__all__ = ["Backend", "Request", "Result", "get_backend", "BACKENDS"]
