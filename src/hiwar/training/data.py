"""From conversations to training rows: encoding with assistant-only labels, packing, and collation."""

from __future__ import annotations

import bisect

import pandas as pd
import torch

from hiwar.training.chat_format import IGNORE, encode


def encode_split(tokenizer, frame: pd.DataFrame, max_length: int) -> tuple[list[dict], dict]:
    """Encoded examples plus counts of what truncation did (see chat_format.encode for the rule)."""
    examples, skipped, dropped = [], 0, 0
    for messages in frame["messages"]:
        enc = encode(tokenizer, [dict(m) for m in messages], max_length)
        if enc is None:
            skipped += 1
            continue
        dropped += enc.exchanges_dropped
        examples.append({"input_ids": enc.input_ids, "labels": enc.labels})
    trained = sum(sum(l != IGNORE for l in ex["labels"]) for ex in examples)
    return examples, {"conversations": len(frame), "examples": len(examples), "skipped_too_long": skipped,
                      "exchanges_dropped": dropped, "assistant_tokens": trained}


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
