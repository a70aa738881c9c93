"""A deterministic fake backend: writes a well-formed Arabic dialogue picked from the bundled conversations by
the request seed. Tests use it to drive generate -> clean -> split without a model, and it records every
request it receives so tests can assert what was (and was not) sent."""

from __future__ import annotations

from hiwar.generation.base import Backend, OnResult, Request, Result
from hiwar.generation.prompts import format_dialogue
from hiwar.bundled import load_bundled


class FakeBackend(Backend):
    def __init__(self, params, conversations: list[dict] | None = None):
        super().__init__(params)
        self.conversations = conversations if conversations is not None else load_bundled().conversations
        self.calls: list[list[Request]] = []

    @property
    def model_id(self) -> str:
        return "fake"

    def generate(self, requests: list[Request], on_result: OnResult) -> None:
        self.calls.append(list(requests))
        for index, request in enumerate(requests):
            messages = self.conversations[request.seed % len(self.conversations)]["messages"]
            text = format_dialogue(messages)
            on_result(index, Result(text=text, finish_reason="stop", tokens_in=len(request.prompt),
                                    tokens_out=len(text)))
