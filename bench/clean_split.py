"""Cleaning + splitting throughput at paper scale (43,316 conversations) and at 10x.

Builds a synthetic corpus of raw generations from the bundled conversations (recombined turns, with exact
duplicates, near duplicates and broken rows mixed in, as a real generator produces), then times the
clean and split stages' library calls on it. Prints conversations/s at each scale and the 10x/1x ratio
(goal: paper scale under 60 s on 2 cores; ratio at most 12, i.e. near-linear).

    python bench/clean_split.py            # 1x and 10x
    python bench/clean_split.py --scales 1 # paper scale only
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from hiwar.cleaning import clean
from hiwar.params import load_section
from hiwar.generation.prompts import format_dialogue
from hiwar.bundled import load_bundled
from hiwar.splitting import signatures, split, split_metrics

PAPER = 43_316


def synthetic_raw(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    convs = load_bundled().conversations
    users = [m["content"] for c in convs for m in c["messages"] if m["role"] == "user"]
    answers = [m["content"] for c in convs for m in c["messages"] if m["role"] == "assistant"]
    topics = [c["topic"] for c in convs]
    rows, texts = [], []
    for i in range(n):
        kind = rng.random()
        if kind < 0.05 and texts:  # exact duplicate of an earlier row
            text = texts[rng.integers(len(texts))]
        elif kind < 0.10 and texts:  # near duplicate: one word dropped
            words = texts[rng.integers(len(texts))].split(" ")
            del words[rng.integers(1, len(words))]
            text = " ".join(words)
        else:
            exchanges = int(rng.integers(2, 6))
            messages = []
            for _ in range(exchanges):
                messages.append({"role": "user", "content": users[rng.integers(len(users))]})
                answer = answers[rng.integers(len(answers))].split(" ")
                rng.shuffle(answer)  # recombined words: distinct text, realistic lengths and script
                messages.append({"role": "assistant", "content": " ".join(answer)})
            if kind > 0.97:  # a broken one: two answers in a row
                messages.insert(1, dict(messages[1]))
            text = format_dialogue(messages)
        texts.append(text)
        rows.append({"conversation_id": f"c{i:07d}", "cell_id": f"cell{i // 3:06d}", "topic": topics[i % len(topics)],
                     "country": "EG", "sample_index": i % 3, "exchanges": 4, "persona": "student",
                     "generator": "synthetic", "template": "tiny", "prompt_hash": "-", "prompt": "",
                     "raw_text": text, "finish_reason": "stop"})
    return pd.DataFrame(rows)


def run(n: int) -> float:
    raw = synthetic_raw(n)
    start = time.perf_counter()
    kept, _, metrics = clean(raw, load_section("clean"))
    cleaned = time.perf_counter()
    params = load_section("split")  # the split stage's work: signatures once, split, leak check
    sigs = signatures(kept)
    parts = split(kept, params, sigs)
    split_metrics(parts, params.leak_threshold, dict(zip(kept["conversation_id"], sigs)))
    seconds = time.perf_counter() - start
    sizes = {k: len(v) for k, v in parts.items()}
    print(f"{n:>9,} conversations: {seconds:7.1f} s (clean {cleaned - start:.1f} s), {n / seconds:8.0f} conv/s "
          f"(kept {metrics['kept']:,}; rejections {metrics['reasons']}; splits {sizes})", flush=True)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    times = {scale: run(PAPER * scale) for scale in args.scales}
    if 1 in times and 10 in times:
        print(f"10x / 1x time ratio: {times[10] / times[1]:.2f} (goal <= 12)")


if __name__ == "__main__":
    main()
