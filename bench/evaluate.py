"""Evaluation throughput: replies generated in batches of 16 vs one at a time.

Uses a small GPT-2 stand-in built here with hiwar's chat format and the reply prompts (histories) of the
bundled conversations; both runs generate the same number of new tokens per reply (greedy, no early stop), by
default the mean length of the seed's assistant turns, so the ratio measures batching alone.
Goal: at least 4x replies/s at batch 16.

    python bench/evaluate.py [--replies 64] [--new-tokens N]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from hiwar.training.chat_format import add_chat_format  # noqa: E402
from hiwar.evaluation.metrics import generate_replies, reply_prompts  # noqa: E402
from hiwar.params import StandIn  # noqa: E402
from hiwar.bundled import load_bundled  # noqa: E402
from hiwar.standins import build_model, text_corpus, train_tokenizer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=None, help="default: mean assistant-turn length")
    args = parser.parse_args()
    seed = load_bundled()
    torch.manual_seed(0)
    tokenizer = train_tokenizer(text_corpus(seed), 2048)
    model = build_model(StandIn(arch="gpt2", vocab_size=2048, hidden_size=128, layers=3, heads=4, context=1024,
                                steps=1, batch_size=1, learning_rate=1e-3), tokenizer)
    add_chat_format(tokenizer, model)
    model.eval()
    if args.new_tokens is None:
        answers = [m["content"] for c in bundled.conversations for m in c["messages"] if m["role"] == "assistant"]
        args.new_tokens = round(sum(len(tokenizer(a)["input_ids"]) for a in answers) / len(answers))
    print(f"{args.replies} replies of {args.new_tokens} new tokens each")
    histories = [h for h, _ in reply_prompts([c["messages"] for c in bundled.conversations])][: args.replies]
    rates = {}
    for batch in (1, 16):
        start = time.perf_counter()
        # stop_token=PAD never appears, so every reply is exactly --new-tokens long in both runs
        replies = generate_replies(model, tokenizer, histories, args.new_tokens, batch, seed=0, progress=False,
                                   stop_token=tokenizer.pad_token)
        seconds = time.perf_counter() - start
        rates[batch] = len(replies) / seconds
        print(f"batch {batch:2d}: {rates[batch]:7.2f} replies/s, {rates[batch] * args.new_tokens:8.0f} new tokens/s")
    print(f"batch 16 / one at a time: {rates[16] / rates[1]:.2f}x (goal >= 4)")


if __name__ == "__main__":
    main()
