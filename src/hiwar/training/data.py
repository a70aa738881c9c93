"""From conversations to training rows: encoding with assistant-only labels, packing, and collation."""

from __future__ import annotations

import bisect

import pandas as pd
import torch

from hiwar.errors import HiwarError
from hiwar.training.chat_format import IGNORE, encode, label_runs


def turn_lengths(tokenizer, messages: list[dict]) -> list[tuple[int, int]]:
    """For every assistant turn: (tokens of the conversation up to the end of that turn, its trained tokens).
    A max_length keeps exactly the turns whose first number fits, as encode's truncation rule does."""
    full = encode(tokenizer, messages, max_length=10**9)
    ends = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    sizes = [len(run) for run in label_runs(full.labels)]
    prefix = [len(encode(tokenizer, messages[: i + 1], max_length=10**9).input_ids) for i in ends]
    return list(zip(prefix, sizes))


def encode_split(tokenizer, frame: pd.DataFrame, max_length: int) -> tuple[list[dict], dict]:
    """Encoded examples plus counts of what truncation did (see chat_format.encode for the rule): exchanges
    and assistant tokens before and after truncation, their dropped shares, and the tokenizer's tokens per
    word of the conversations' text (how much room a max_length really gives)."""
    examples, skipped, dropped, exchanges, tokens_before, pieces, words = [], 0, 0, 0, 0, 0, 0
    for messages in frame["messages"]:
        messages = [dict(m) for m in messages]
        turns = sum(m["role"] == "assistant" for m in messages)
        exchanges += turns
        full = encode(tokenizer, messages, max_length=10**9)
        tokens_before += sum(l != IGNORE for l in full.labels)
        for m in messages:
            pieces += len(tokenizer(m["content"], add_special_tokens=False)["input_ids"])
            words += len(m["content"].split())
        enc = full if len(full.input_ids) <= max_length else encode(tokenizer, messages, max_length)
        if enc is None:
            skipped += 1
            dropped += turns
            continue
        dropped += enc.exchanges_dropped
        examples.append({"input_ids": enc.input_ids, "labels": enc.labels})
    trained = sum(sum(l != IGNORE for l in ex["labels"]) for ex in examples)
    return examples, {"conversations": len(frame), "examples": len(examples), "skipped_too_long": skipped,
                      "exchanges": exchanges, "exchanges_dropped": dropped,
                      "exchanges_dropped_share": round(dropped / max(exchanges, 1), 4),
                      "assistant_tokens_before_truncation": tokens_before, "assistant_tokens": trained,
                      "assistant_tokens_dropped_share": round(1 - trained / max(tokens_before, 1), 4),
                      "tokens_per_word": round(pieces / max(words, 1), 3)}


def max_length_for(tokenizer, frame: pd.DataFrame, share: float) -> int:
    """The smallest max_length at which truncation drops at most `share` of the exchanges and of the
    assistant tokens of `frame`."""
    turns = [t for messages in frame["messages"] for t in turn_lengths(tokenizer, [dict(m) for m in messages])]
    total_turns, total_tokens = len(turns), sum(size for _, size in turns)
    dropped_turns, dropped_tokens = total_turns, total_tokens
    for length, size in sorted(turns):  # raising max_length to `length` keeps this turn (and shorter ones)
        dropped_turns, dropped_tokens = dropped_turns - 1, dropped_tokens - size
        if dropped_turns <= share * total_turns and dropped_tokens <= share * total_tokens:
            return length
    return max((length for length, _ in turns), default=0)


def check_truncation(name: str, tokenizer, frame: pd.DataFrame, counts: dict, max_length: int,
                     max_share: float, context: int) -> None:
    """Stop (HiwarError) when truncation drops more than `max_share` of the exchanges or assistant tokens,
    naming the model, the shares and the max_length that would keep them under the threshold."""
    worst = max(counts["exchanges_dropped_share"], counts["assistant_tokens_dropped_share"])
    if worst <= max_share:
        return
    needed = max_length_for(tokenizer, frame, max_share)
    room = (f"set finetune.models.{name}.max_length to at least {needed}" if needed <= context else
            f"that needs max_length {needed}, beyond the model's context of {context} tokens: shorten the "
            "conversations (clean.max_exchanges) or pick a model with a longer context")
    raise HiwarError(
        f"finetune.models.{name}: max_length {max_length} drops {counts['exchanges_dropped']} of "
        f"{counts['exchanges']} training exchanges ({counts['exchanges_dropped_share']:.1%}) and "
        f"{counts['assistant_tokens_dropped_share']:.1%} of assistant tokens, above finetune.max_dropped_share "
        f"{max_share:.0%} ({counts['tokens_per_word']} tokens per word); {room}")


def pack(examples: list[dict], max_length: int) -> list[dict]:
    """Conversations packed into rows of at most `max_length` tokens (best fit, longest first).

    Position ids restart at 0 for every conversation, and attention keeps to each conversation (see
    packed_attention), so no token attends across conversations. The first label of every conversation is
    ignored already (it is a user marker), so no target is predicted from the previous conversation either.
    """
    rows: list[dict] = []
    free: list[tuple[int, int]] = []  # (space left, row index), sorted: the tightest row that fits wins
    for ex in sorted(examples, key=lambda e: -len(e["input_ids"])):
        n = len(ex["input_ids"])
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            space, index = free.pop(at)
        else:
            space, index = max_length, len(rows)
            rows.append({"input_ids": [], "labels": [], "position_ids": []})
        bisect.insort(free, (space - n, index))
        row = rows[index]
        row["input_ids"] += ex["input_ids"]
        row["labels"] += ex["labels"]
        row["position_ids"] += list(range(n))
    return rows


class PadCollator:
    """Right-pads a batch; padding is never attended to and never a target.

    Packed rows carry position ids and no attention mask: the position ids say where conversations end, and
    the padding after a row's last token counts as one more conversation, never attended to by a real one."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id)
        labels = torch.full((len(features), width), IGNORE)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        positions = torch.arange(width).repeat(len(features), 1)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            ids[row, :n] = torch.tensor(f["input_ids"])
            labels[row, :n] = torch.tensor(f["labels"])
            mask[row, :n] = 1
            if "position_ids" in f:
                positions[row, :n] = torch.tensor(f["position_ids"])
                positions[row, n:] = torch.arange(width - n)
        if "position_ids" in features[0]:
            return {"input_ids": ids, "labels": labels, "position_ids": positions, "use_cache": False}
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
