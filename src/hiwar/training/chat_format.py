"""The conversation format hiwar gives base models (which have none), and assistant-only labels.

Role markers are special tokens added when a tokenizer lacks them; the Jinja chat template is saved with
the tokenizer, so fine-tuning, evaluation and chat all render conversations the same way.

Labels come from incremental prefix rendering: the characters an assistant turn adds are those between
render(history, add_generation_prompt=True) and render(history + [turn]). Tokens whose character span lies
inside such a stretch are trained, so the assistant's words and its end-of-turn marker are learnt and
nothing else is, whatever the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hiwar.errors import HiwarError

SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
ROLE_TOKENS = [SYSTEM, USER, ASSISTANT, END]
IGNORE = -100

HIWAR_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}" + SYSTEM + "{{ m['content'] }}" + END +
    "{%- elif m['role'] == 'user' -%}" + USER + "{{ m['content'] }}" + END +
    "{%- elif m['role'] == 'assistant' -%}" + ASSISTANT + "{{ m['content'] }}" + END +
    "{%- else -%}{{ raise_exception('unknown role: ' + m['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}" + ASSISTANT + "{%- endif -%}"
)


def add_chat_format(tokenizer, model=None) -> int:
    """Give a base tokenizer (and its model) the role markers and chat template; returns tokens added.

    New embedding rows are set to the mean of the existing ones, a neutral start that random rows are not.
    """
    missing = [t for t in ROLE_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    tokenizer.chat_template = HIWAR_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        old_rows = model.get_input_embeddings().weight.shape[0]
        if old_rows < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            with torch.no_grad():
                for emb in (model.get_input_embeddings(), model.get_output_embeddings()):
                    if emb is not None:
                        emb.weight[old_rows:] = emb.weight[:old_rows].mean(dim=0)
    return len(missing)


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans each assistant turn adds to it."""
    full = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True)
        after = render(tokenizer, messages[: i + 1])
        if not (after.startswith(before) and full.startswith(after)):
            raise HiwarError("chat template is not prefix-stable: assistant-only labels cannot be derived from it")
        spans.append((len(before), len(after)))
    return full, spans


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    exchanges_dropped: int  # whole exchanges cut from the end to fit max_length


def encode(tokenizer, messages: list[dict], max_length: int) -> Encoded | None:
    """Token ids and assistant-only labels.

    Truncation rule: an assistant turn is never cut in half. Whole exchanges are dropped from the end until
    the conversation fits; a conversation whose first exchange alone is too long gives None (the caller
    counts it as skipped).
    """
    lead = 1 if messages and messages[0]["role"] == "system" else 0
    for keep in range(len(messages), lead, -1):
        if messages[keep - 1]["role"] != "assistant":
            continue
        text, spans = assistant_spans(tokenizer, messages[:keep])
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) > max_length:
            continue
        labels = [
            tok if any(s <= a and b <= e for s, e in spans) and b > a else IGNORE
            for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"])
        ]
        trained = sum(l != IGNORE for l in labels)
        if trained == 0 or trained == len(labels):
            raise HiwarError(f"label mask is {'empty' if trained == 0 else 'all tokens'}: the chat template or tokenizer is broken")
        dropped = sum(m["role"] == "assistant" for m in messages[keep:])
        return Encoded(enc["input_ids"], labels, dropped)
    return None


def label_runs(labels: list[int]) -> list[list[int]]:
    """The runs of consecutive trained (labelled) token ids; for a correct mask, one run per assistant turn."""
    runs, current = [], []
    for label in labels + [IGNORE]:
        if label != IGNORE:
            current.append(label)
        elif current:
            runs.append(current)
            current = []
    return runs


def trained_text(tokenizer, labels: list[int]) -> list[str]:
    """The text of each run of trained tokens: what a model is taught, to check masks by eye or in tests.
    For a correct mask it is every assistant turn followed by its end-of-turn marker."""
    return [tokenizer.decode(run) for run in label_runs(labels)]
