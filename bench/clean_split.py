"""Clean + split at paper scale (43,316 conversations) and 10x, on a realistic synthetic corpus.

The corpus is built from the bundled conversations (each turn's words drawn from real turns and shuffled,
so texts are distinct but lengths, vocabulary and script are real) and written the way generators answer: five label
styles, stray tokenizer markers, cut generations (finish_reason "length", and "stop" with a cut last
turn), about 8% of rows failing one rule each (English turn, refusal, meta talk, placeholder, bad
alternation, empty turn, loop, failed or empty generation), exact copies with tashkeel, and near
duplicates made by word edits at rates that spread their true Jaccard similarity (of the character
n-gram sets MinHash estimates) over the whole range, 0.6-0.8 around the threshold included.

Each scale runs the clean and split stages' streaming calls (`clean_file`, `split_file`) in a fresh
process, so its peak RSS is its own. Every scale runs with language identification (`clean.language_id`,
as params.yaml has it) and without it, so its cost is measured on the same corpus in the same rounds.
Printed: seconds and peak RSS per run, median and range over the repeats (after a discarded warm-up of
each side, sides interleaved: 1x with, 1x without, 10x with, 10x without, then again), the cost of language
ID per round (cleaning with / without it, and the seconds it adds), the 10x/1x time ratio, and the
near-duplicate detection's precision and recall against the planted pairs, per similarity band.
Goals: 1x under 60 s (with language ID), 10x peak RSS <= 3 GB, 10x/1x <= 12, recall >= 0.95 above the threshold.

    python bench/clean_split.py                       # 1x and 10x, 3 repeats
    python bench/clean_split.py --scales 1 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.arabic import match_key
from hiwar.bundled import load_bundled
from hiwar.io import write_parquet
from hiwar.params import load_section

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interleave import add_repeats, parse  # noqa: E402

PAPER = 43_316
STYLES = [("[|Human|] ", "[|AI|] "), ("المستخدم: ", "المساعد: "), ("User: ", "Assistant: "),
          ("**المستخدم:** ", "**المساعد:** "), ("{n}. السائل: ", "{n}. المجيب: ")]
BROKEN = {
    "english_turn": "Sure! Here are a few practical tips that should help you with this problem right away.",
    "refusal": "عذرًا، لا أستطيع تقديم نصيحة في هذا الموضوع، فالأفضل أن تسأل مختصًا.",
    "meta_talk": "بصفتي نموذجًا لغويًا لا أملك تجربة شخصية، لكن يمكنني أن أقدم لك معلومات عامة.",
    "placeholder": "يمكنك التواصل مع الدكتور [اسم الطبيب] في عيادته يوم [التاريخ] لحجز موعد.",
}


def _format(messages: list[dict], style: int) -> str:
    user, assistant = STYLES[style]
    lines = [(user if m["role"] == "user" else assistant).format(n=i + 1) + m["content"] for i, m in enumerate(messages)]
    return "\n".join(lines)


def _edit(messages: list[dict], rate: float, vocab: list[str], rng) -> list[dict]:
    """A paraphrase-like copy: each word replaced, dropped or kept with probabilities set by `rate`."""
    out = []
    for m in messages:
        words = []
        for w in m["content"].split(" "):
            r = rng.random()
            if r < rate * 0.7:
                words.append(vocab[rng.integers(len(vocab))])
            elif r >= rate:
                words.append(w)
        out.append({"role": m["role"], "content": " ".join(words) or m["content"]})
    return out


def shingles(messages: list[dict], n: int) -> set:
    """The character n-gram set the clean stage's MinHash estimates (dedup.conversation_text's text)."""
    text = "\n".join(f"{m['role']}: {match_key(m['content'])}" for m in messages)
    return {text[i:i + n] for i in range(max(len(text) - n + 1, 1))}


def build(n: int, path: Path, seed: int = 0) -> list[dict]:
    """Write a raw-generations Parquet file of n rows; return the planted near-duplicate pairs."""
    rng = np.random.default_rng(seed)
    convs = load_bundled().conversations
    users = [m["content"] for c in convs for m in c["messages"] if m["role"] == "user"]
    answers = [m["content"] for c in convs for m in c["messages"] if m["role"] == "assistant"]
    vocab = sorted({w for a in answers for w in a.split()})
    pieces = [f.rstrip("،,. ") for a in answers for f in re.split(r"(?<=[.،؟!])\s+", a) if len(f.split()) >= 3]
    topics = sorted({c["topic"] for c in convs})
    base: list[list[dict]] = []
    rows, planted = [], []
    for i in range(n):
        kind, finish = rng.random(), "stop"
        if kind < 0.03 and base:  # an exact copy, with tashkeel on one word
            j = int(rng.integers(len(base)))
            messages = [dict(m) for m in base[j]]
            messages[0]["content"] = messages[0]["content"].replace("ا", "اَ", 1)
        elif kind < 0.13 and base:  # an edited copy at a random edit rate
            j = int(rng.integers(len(base)))
            messages = _edit(base[j], float(rng.uniform(0.0, 0.6)), vocab, rng)
            planted.append({"original": f"c{j:07d}", "copy": f"c{i:07d}"})
        else:
            messages = []
            for _ in range(int(rng.integers(2, 6))):
                question = users[rng.integers(len(users))].rstrip("؟?").split()
                rng.shuffle(question)  # recombined words: distinct text, realistic lengths and script
                messages.append({"role": "user", "content": " ".join(question) + "؟"})
                answer = [w for k in rng.integers(len(pieces), size=int(rng.integers(3, 7))) for w in pieces[k].split()]
                rng.shuffle(answer)
                messages.append({"role": "assistant", "content": " ".join(answer) + "."})
        base.append(messages)
        text = _format(messages, int(rng.integers(len(STYLES))))
        roll = rng.random()
        if roll < 0.08:  # a row that fails one rule
            broken = list(BROKEN) + ["bad_alternation", "empty_turn", "repetition", "generation_failed", "empty_output"]
            what = broken[rng.integers(len(broken))]
            if what in BROKEN:
                text = _format(messages[:1] + [{"role": "assistant", "content": BROKEN[what]}] + messages[2:], 0)
            elif what == "bad_alternation":
                text = _format(messages[:2] + messages[1:], 0)
            elif what == "empty_turn":
                text = _format(messages[:1] + [{"role": "assistant", "content": "..."}] + messages[2:], 0)
            elif what == "repetition":
                loop = " ".join([messages[1]["content"].split("،")[0]] * 6)
                text = _format(messages[:1] + [{"role": "assistant", "content": loop}] + messages[2:], 0)
            elif what == "generation_failed":
                finish = "error"
            else:
                text = "  \n"
        elif roll < 0.13:  # cut by the token limit, mid-word
            text, finish = text[: int(len(text) * rng.uniform(0.6, 0.95))], "length"
        elif roll < 0.15:  # cut, but reported as "stop" by a proxy
            text = text.rsplit(" ", 3)[0] + "، ثم"
        elif roll < 0.18:  # stray end-of-text markers
            text = text.replace("\n", "<|endoftext|>\n", 1) + "</s>"
        rows.append({"conversation_id": f"c{i:07d}", "cell_id": f"cell{i // 3:06d}", "topic": topics[i % len(topics)],
                     "country": "EG", "sample_index": i % 3, "exchanges": 4, "persona": "student",
                     "generator": "synthetic", "template": "chat", "prompt_hash": "-", "raw_text": text,
                     "finish_reason": finish})
    write_parquet(path, pd.DataFrame(rows))  # as the generate stage writes it
    return planted


def peak_rss_gb() -> float:
    """This process's peak resident memory since it started (VmHWM; unlike ru_maxrss it does not carry
    over the parent's peak through fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(raw: Path, work: Path, language_id: bool = True) -> None:
    """One timed clean + split, in this process; prints a JSON line."""
    from hiwar.cleaning import clean_file
    from hiwar.dedup import hasher_for
    from hiwar.splitting import split_file

    start = time.perf_counter()
    params = load_section("clean").model_copy(update={"language_id": language_id})
    metrics = clean_file(raw, work / "kept.parquet", work / "rejected.parquet", params)
    cleaned = time.perf_counter()
    split = split_file(work / "kept.parquet", work / "split", load_section("split"), hasher_for(load_section("clean")))
    done = time.perf_counter()
    print(json.dumps({"seconds": done - start, "clean_s": cleaned - start, "split_s": done - cleaned,
                      "peak_rss_gb": peak_rss_gb(),
                      "kept": metrics["kept"], "first_reasons": metrics["first_reasons"],
                      "languages": metrics["languages"], "varieties": metrics["varieties"],
                      "splits": split["conversations"], "moved": split["independent_leaks"]["moved_to_train"]}))


def timed(raw: Path, work: Path | None = None, language_id: bool = True) -> dict:
    """One run in a fresh process; its outputs go to `work` when given (else a temporary folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, __file__, "--child", str(raw), str(work or tmp), str(int(language_id))],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def detection(work: Path, planted: list[dict], threshold: float, ngram: int) -> None:
    """Precision and recall of near-duplicate detection against the planted pairs, by true Jaccard band,
    from the clean outputs in `work`."""
    kept = pd.read_parquet(work / "kept.parquet", columns=["conversation_id", "messages"])
    rejected = pd.read_parquet(work / "rejected.parquet", columns=["conversation_id", "messages", "reasons", "duplicate_of"])
    messages = dict(zip(kept["conversation_id"], kept["messages"]))
    verdict = {cid: list(r) for cid, r in zip(rejected["conversation_id"], rejected["reasons"])}
    partner = dict(zip(rejected["conversation_id"], rejected["duplicate_of"]))
    messages |= {cid: m for cid, m, r in zip(rejected["conversation_id"], rejected["messages"], rejected["reasons"])
                 if r[-1] in ("near_duplicate", "exact_duplicate") and r[0] != "truncated"}
    bands = {b: [0, 0] for b in ("0.0-0.5", "0.5-0.6", "0.6-0.7", "0.7-0.8", "0.8-0.9", "0.9-1.0")}
    above = [0, 0]
    for pair in planted:  # only pairs whose both sides passed the rules untrimmed are judged
        a, b = pair["original"], pair["copy"]
        if a not in messages or b not in messages or (a in verdict and verdict[a][-1] != "near_duplicate"):
            continue
        j = len((sa := shingles(messages[a], ngram)) & (sb := shingles(messages[b], ngram))) / len(sa | sb)
        found = verdict.get(b, [""])[-1] in ("near_duplicate", "exact_duplicate")
        band = next(k for k in bands if j <= float(k.split("-")[1]) or k == "0.9-1.0")
        bands[band][0] += 1
        bands[band][1] += found
        if j >= threshold:
            above[0] += 1
            above[1] += found
    reported = [(cid, partner[cid]) for cid, r in verdict.items() if r == ["near_duplicate"]]
    similarity = [len((sa := shingles(messages[c], ngram)) & (sb := shingles(messages[p], ngram))) / len(sa | sb)
                  for c, p in reported if c in messages and p in messages]
    strict = sum(j >= threshold for j in similarity)
    near = sum(j >= threshold - 0.05 for j in similarity)
    print(f"near duplicates (threshold {threshold}): recall above the threshold {above[1]}/{above[0]} = "
          f"{above[1] / max(above[0], 1):.3f}; precision (true Jaccard of the reported pair >= threshold) "
          f"{strict}/{len(reported)} = {strict / max(len(reported), 1):.3f}, within 0.05 below it "
          f"{near}/{len(reported)} = {near / max(len(reported), 1):.3f}")
    print("  recall by true Jaccard band: " + ", ".join(f"{k}: {f}/{n}" for k, (n, f) in bands.items()))


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    add_repeats(parser)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)
    args = parse(parser)
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]), args.child[2] == "1")
    if args.build:  # in its own process, so that this one stays small while the runs go
        planted = build(int(args.build[0]), Path(args.build[1]))
        return Path(args.build[1] + ".planted.json").write_text(json.dumps(planted))
    clean_params = load_section("clean")
    print(f"settings: clean params {clean_params.model_dump()}, split params {load_section('split').model_dump()}; "
          f"one fresh process per run", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        raws, planted = {}, {}
        for scale in args.scales:
            raws[scale] = Path(tmp) / f"raw{scale}.parquet"
            subprocess.run([sys.executable, __file__, "--build", str(PAPER * scale), str(raws[scale])], check=True)
            planted[scale] = json.loads(Path(str(raws[scale]) + ".planted.json").read_text())
        smallest = min(args.scales)
        work = Path(tmp) / "warm-up"
        work.mkdir()
        timed(raws[smallest], work)  # warm-up: its time is discarded, its outputs are judged
        detection(work, planted[smallest], clean_params.near_dup_threshold, clean_params.shingle_chars)
        timed(raws[smallest], language_id=False)  # the other side's warm-up
        sides = [(scale, lid) for scale in args.scales for lid in (True, False)]
        runs = {side: [] for side in sides}
        for repeat in range(args.repeats):
            for scale, lid in sides:  # interleaved: 1x with, 1x without, 10x with, 10x without, 1x with ...
                result = timed(raws[scale], language_id=lid)
                runs[scale, lid].append(result)
                print(f"{PAPER * scale:>9,} conversations, language ID {'on ' if lid else 'off'}, run {repeat + 1}: "
                      f"{result['seconds']:7.1f} s (clean {result['clean_s']:.1f} s, split {result['split_s']:.1f} s), "
                      f"peak RSS {result['peak_rss_gb']:.2f} GB; kept {result['kept']:,}; first reasons "
                      f"{result['first_reasons']}; languages {result['languages']}; varieties {result['varieties']}; "
                      f"splits {result['splits']}; moved to train {result['moved']}", flush=True)
    for (scale, lid), results in runs.items():
        print(f"{scale}x, language ID {'on' if lid else 'off'}: seconds {summary([r['seconds'] for r in results])} "
              f"(clean {summary([r['clean_s'] for r in results])}); peak RSS GB {summary([r['peak_rss_gb'] for r in results])}")
    for scale in args.scales:
        on, off = runs[scale, True], runs[scale, False]
        print(f"{scale}x, cost of language ID per round: cleaning with / without "
              f"{summary([a['clean_s'] / b['clean_s'] for a, b in zip(on, off)])}, seconds added "
              f"{summary([a['clean_s'] - b['clean_s'] for a, b in zip(on, off)])}")
    if 1 in args.scales:
        print(f"1x clean + split with language ID: median {statistics.median(r['seconds'] for r in runs[1, True]):.1f} s "
              f"(goal under 60 s)")
    if 1 in args.scales and 10 in args.scales:
        ratios = [b["seconds"] / a["seconds"] for a, b in zip(runs[1, True], runs[10, True])]
        print(f"10x / 1x time ratio (language ID on): {summary(ratios)} (goal <= 12)")


if __name__ == "__main__":
    main()
