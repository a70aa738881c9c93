"""Evaluation throughput: replies generated in batches of 16 vs one at a time, at natural reply lengths.

A small GPT-2 stand-in is built here and trained on a few bundled conversations rendered in hiwar's chat
format until it knows them nearly by heart (a briefly trained stand-in never ends a greedy reply: it loops
until the cap). Asked for the assistant turns of those conversations, it writes replies close to the
references and ends them with the end marker, so reply lengths follow real Arabic assistant turns. Both
sides answer the same prompts (greedy, so the same texts) and stop at the end marker or at
--max-new-tokens, as the evaluate stage does; a batch runs until its longest reply ends. The reply lengths
(tokens) and how many hit the cap are printed. Each side runs once as a discarded warm-up, then
--repeats times interleaved; median [min, max] of replies/s and of the ratio. Goal: at least 4x at batch 16.

    python bench/evaluate.py [--replies 32] [--max-new-tokens 64] [--train-steps 300] [--conversations 12] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from hiwar.bundled import load_bundled  # noqa: E402
from hiwar.evaluation.metrics import generate_replies, reply_prompts  # noqa: E402
from hiwar.params.models import StandIn  # noqa: E402
from hiwar.standins import blocks, build_model, pretrain, text_corpus, train_tokenizer  # noqa: E402
from hiwar.training.chat_format import add_chat_format, render  # noqa: E402
from interleave import add_repeats, interleave, parse, summarize  # noqa: E402


def chat_standin(conversations: list[list[dict]], steps: int):
    """Tokenizer and model that have seen the chat format, so replies end with the end marker."""
    torch.manual_seed(0)
    tokenizer = train_tokenizer(text_corpus(load_bundled()), 2048)
    spec = StandIn(arch="gpt2", vocab_size=2048, hidden_size=128, layers=3, heads=4, context=1024, steps=steps,
                   batch_size=8, learning_rate=2e-3)
    model = build_model(spec, tokenizer)
    add_chat_format(tokenizer, model)
    data = blocks(tokenizer, [render(tokenizer, c) for c in conversations], 128)
    spec = spec.model_copy(update={"batch_size": min(spec.batch_size, len(data))})
    metrics = pretrain(model, data, spec, seed=0, desc="train chat stand-in")
    print(f"stand-in: {metrics['parameters']:,} parameters, {steps} steps on {len(conversations)} chat-formatted conversations, "
          f"final loss {metrics['final_loss']}")
    return tokenizer, model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64, help="reply length cap, as evaluate.max_new_tokens")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--conversations", type=int, default=12, help="bundled conversations the stand-in learns")
    add_repeats(parser, threads=True)
    args = parse(parser)
    conversations = [c["messages"] for c in load_bundled().conversations][:: 11][: args.conversations]
    tokenizer, model = chat_standin(conversations, args.train_steps)
    model.eval()
    prompts = reply_prompts(conversations)
    histories = [h for h, _ in prompts][: args.replies]
    references = [len(tokenizer(r, add_special_tokens=False)["input_ids"]) for _, r in prompts][: args.replies]
    texts, lengths = {}, {}

    def run(batch: int) -> float:
        sizes: list = []
        start = time.perf_counter()
        texts[batch] = generate_replies(model, tokenizer, histories, args.max_new_tokens, batch, seed=0,
                                        progress=False, lengths=sizes)
        lengths[batch] = sizes
        return len(histories) / (time.perf_counter() - start)

    print(f"{len(histories)} replies, greedy, stop at the end marker or after {args.max_new_tokens} tokens; "
          f"torch threads {torch.get_num_threads()}")
    rates = interleave({"batch 16": lambda: run(16), "batch 1": lambda: run(1)}, args.repeats)
    summarize(rates, "replies/s", [("batch 16", "batch 1")])
    tokens = [n for n, _ in lengths[1]]
    capped = sum(c for _, c in lengths[1])
    print(f"  reply lengths (tokens): mean {statistics.mean(tokens):.1f}, median {statistics.median(tokens):.0f}, "
          f"range [{min(tokens)}, {max(tokens)}]; {capped}/{len(tokens)} stopped by the cap (the references: mean "
          f"{statistics.mean(references):.1f}, range [{min(references)}, {max(references)}])")
    same = sum(a == b for a, b in zip(texts[1], texts[16]))
    print(f"  same reply batched and alone: {same}/{len(histories)}; goal batch 16 / one at a time >= 4x")


if __name__ == "__main__":
    main()
