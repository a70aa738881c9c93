"""A deterministic fake backend: writes a well-formed Arabic dialogue picked from the seed conversations by
the request seed. Tests use it to drive generate -> clean -> split without a model."""

from __future__ import annotations

from hiwar.generation.base import Backend, Request, Result
from hiwar.prompts import format_dialogue
from hiwar.seed import load_seed


class FakeBackend(Backend):
    def __init__(self, params, conversations: list[dict] | None = None):
        super().__init__(params)
        self.conversations = conversations if conversations is not None else load_seed().conversations
        self.calls: list[list[Request]] = []

    @property
    def model_id(self) -> str:
        return "fake"

    def generate(self, requests: list[Request]) -> list[Result]:
        self.calls.append(list(requests))
        results = []
        for request in requests:
            messages = self.conversations[request.seed % len(self.conversations)]["messages"]
            text = format_dialogue(messages)
            results.append(Result(text=text, finish_reason="stop", tokens_in=len(request.prompt), tokens_out=len(text)))
        return results
