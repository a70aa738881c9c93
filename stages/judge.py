"""Stages `judge` (`score`: the clean conversations, gated by judge.min_score) and `judge-compare`
(`compare`: models pairwise; the judge as one more rater), or "not judged". See docs/judge.md."""

import sys
from pathlib import Path

import pandas as pd

from hiwar.bundled import load_bundled
from hiwar.errors import HiwarError
from hiwar.io import read_parquet, write_json, write_parquet, write_run_facts
from hiwar.judge import steps
from hiwar.params import load_section
from hiwar.rating.sheets import read_filled
from hiwar.stage import run_stage

OUT = Path("data/judge")


def score():
    params = load_section("judge")
    conversations = read_parquet("data/clean/conversations.parquet", ["conversation_id", "topic", "country", "messages"])
    raw = read_parquet("data/raw/generations.parquet", ["conversation_id", "raw_text"])
    bundled = load_bundled()
    out = steps.score(params, conversations, dict(zip(raw["conversation_id"], raw["raw_text"])), bundled.topics,
                      bundled.countries)
    write_run_facts("judge", out["facts"])
    for name in ("scores", "kept", "rejected"):
        write_parquet(OUT / f"{name}.parquet", out[name])
    write_json("plots/judge/per_topic.json", out["per_topic"])
    write_json("plots/judge/per_country.json", out["per_country"])
    write_json("metrics/judge.json", out["metrics"])
    m = out["metrics"]
    print(f"judge: {m['judged']} of {m['conversations']} conversations judged" if "judged" in m else "judge: not judged")


def compare():
    params, rating = load_section("judge"), load_section("rating")
    replies_path, key_path = Path("data/eval/replies.parquet"), Path("ratings/key.csv")
    replies = read_parquet(replies_path) if replies_path.is_file() else None
    key = pd.read_csv(key_path, dtype={"item": str}) if key_path.is_file() else None
    humans = {p.stem: read_filled(p, key, rating.criteria, rating.scale)
              for p in sorted(Path("ratings/filled").glob("*.csv"))} if key is not None else {}
    out = steps.compare(params, replies, key, humans, rating.criteria, rating.seed)
    write_run_facts("judge-compare", out["facts"])
    write_parquet(OUT / "pairwise.parquet", out["verdicts"])
    write_json("metrics/judge_compare.json", out["metrics"])
    print(f"judge-compare: {out['metrics']['status']}")


def main():
    steps_by_name = {"score": score, "compare": compare}
    if len(sys.argv) != 2 or sys.argv[1] not in steps_by_name:
        raise HiwarError("usage: python stages/judge.py score|compare")
    steps_by_name[sys.argv[1]]()


if __name__ == "__main__":
    run_stage(main)
