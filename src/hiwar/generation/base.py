"""The interface every generation backend implements: a list of prompts in, one result per prompt out,
in order. A backend never drops or pads a result: a failure is a result with finish_reason "error"."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from hiwar.params import GenerateParams


@dataclass(frozen=True)
class Request:
    prompt: str
    seed: int


@dataclass(frozen=True)
class Result:
    text: str
    finish_reason: Literal["stop", "length", "error"]
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None


class Backend(ABC):
    def __init__(self, params: GenerateParams):
        self.params = params

    @property
    def model_id(self) -> str:
        """What generated the text, recorded with every row."""
        return self.params.model

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[Result]:
        """One Result per Request, in the same order."""
