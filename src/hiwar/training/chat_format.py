"""The conversation format hiwar gives base models (which have none), and assistant-only labels.

Role markers are special tokens added when a tokenizer lacks them; the Jinja chat template is saved with
the tokenizer, so fine-tuning, evaluation and chat all render conversations the same way. An instruct model
keeps its own template (`chat_format: own`, the default when it has one): everything below works on any
prefix-stable template, ChatML included, and the end-of-turn token is whichever special token ends the
template's assistant turn.

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


def prepare_chat_format(tokenizer, model, chat_format: str) -> str:
    """Apply params' `chat_format` (auto | own | hiwar) to a freshly loaded base; returns own or hiwar.
    auto means own when the tokenizer ships a chat template, else hiwar (a base model has none)."""
    resolved = chat_format if chat_format != "auto" else ("own" if tokenizer.chat_template else "hiwar")
    if resolved == "hiwar":
        add_chat_format(tokenizer, model)
        return resolved
    if not tokenizer.chat_template:
        raise HiwarError(f"{tokenizer.name_or_path}: chat_format is own but the tokenizer has no chat template "
                         "(use chat_format: hiwar or auto)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    end_of_turn(tokenizer)  # fails early, before training, on a template whose turns end in plain text
    return resolved


def uses_hiwar_format(tokenizer) -> bool:
    return tokenizer.chat_template == HIWAR_TEMPLATE


def end_of_turn(tokenizer) -> str:
    """The special token that ends an assistant turn in this tokenizer's template: <|end|> for hiwar's,
    <|im_end|> for ChatML. Training learns it, and generation, evaluation and chat stop at it."""
    text, [(start, stop)] = assistant_spans(tokenizer, [{"role": "user", "content": "x"},
                                                         {"role": "assistant", "content": "y"}])
    turn = text[start:stop]
    special = set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab())
    for token in sorted(special, key=len, reverse=True):
        if token and turn.endswith(token):
            return token
    raise HiwarError(f"{tokenizer.name_or_path}: the chat template's assistant turn ends with {turn[-12:]!r}, not a "
                     "special token, so a reply could not stop at the end of its turn (use chat_format: hiwar)")


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
        # Whitespace a template puts after the end-of-turn token (ChatML's newline) is layout, not reply:
        # generation stops at the token, so it is never learnt.
        spans.append((len(before), len(after.rstrip())))
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
