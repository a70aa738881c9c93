"""Answers held to a JSON schema inside this process (the transformers backend), with llguidance.

At every step the schema's grammar says which tokens may come next; every other token's logit becomes -inf
before the sampler draws, so the answer is valid JSON for the schema as far as it goes (a token limit can
still cut it). Once the grammar is complete only the end-of-text token remains. The JSON is compact (", " and
": ", no other whitespace): with whitespace allowed, a weak model fills its token budget with newlines. llguidance was chosen over
xgrammar, outlines and lm-format-enforcer because it installs as one wheel with no dependencies, reads a
transformers 5 tokenizer as it is (the stand-ins' byte-level BPE included), and its cost was measured
(bench/structured.py, docs/benchmarks.md). Its bitmask is unpacked here with plain torch ops: llguidance's own
kernel is a torch.compile function, which under the stages' pinned AVX2 kernels (docs/reproducibility.md)
let through 296 of 600 tokens where the grammar allowed 1.
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=4)
def _lltokenizer(tokenizer):
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tokenizer)


class SchemaConstraint:
    """A logits processor for one batch: row i follows schemas[i] (JSON text), or nothing when it is None."""

    def __init__(self, tokenizer, schemas: list[str | None], prompt_length: int):
        import llguidance
        import llguidance.torch

        self.lltok = _lltokenizer(tokenizer)
        compact = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        self.matchers = [llguidance.LLMatcher(self.lltok, llguidance.LLMatcher.grammar_from_json_schema(
            s, overrides=compact)) if s else None for s in schemas]
        self.bitmask = llguidance.torch.allocate_token_bitmask(len(schemas), self.lltok.vocab_size)
        self.fill = llguidance.torch.fill_next_token_bitmask
        self.shifts = torch.arange(32, dtype=torch.int32)
        self.prompt_length, self.eos = prompt_length, tokenizer.eos_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids.shape[1] > self.prompt_length  # the first call sees only the prompt
        vocab = self.lltok.vocab_size
        for i, matcher in enumerate(self.matchers):
            if matcher is None:
                continue
            if generated and not matcher.is_stopped():
                matcher.consume_token(int(input_ids[i, -1]))
            if matcher.is_stopped() or matcher.is_error():  # done (or lost): only the end of text is left
                scores[i] = float("-inf")
                scores[i, self.eos] = 0.0
                continue
            self.fill(matcher, self.bitmask, i)
            allowed = ((self.bitmask[i].unsqueeze(-1) >> self.shifts) & 1).flatten()[:vocab].bool()
            scores[i, :vocab].masked_fill_(~allowed, float("-inf"))
            scores[i, vocab:] = float("-inf")  # a model's padded vocabulary beyond the tokenizer's
        return scores
