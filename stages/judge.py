"""Stages `judge` (`score`: the clean conversations, gated by judge.min_score) and `judge-compare`
(`compare`: models pairwise; the judge as one more rater), or "not judged". See docs/judge.md."""

from pathlib import Path

import click
import pandas as pd

from hiwar.bundled import load_bundled
from hiwar.io import read_parquet, write_json, write_parquet, write_run_facts
from hiwar.judge import steps
from hiwar.params import load_section
from hiwar.rating.sheets import read_filled
from hiwar.stage import path_option, run_stage


@click.group()
def main():
    pass


@main.command()
@path_option("--bundled", "folder of the bundled topics and countries")
@path_option("--clean", "kept conversations to judge (Parquet)")
@path_option("--raw", "raw generations, for the judged rows' raw text (Parquet)")
@path_option("--out", "folder for scores, kept and rejected (Parquet)")
@path_option("--plots", "folder for the per-topic and per-country plot data")
@path_option("--metrics", "the judge's counts and scores to write (JSON)")
def score(bundled, clean, raw, out, plots, metrics):
    params = load_section("judge")
    conversations = read_parquet(clean, ["conversation_id", "topic", "country", "messages"])
    texts = read_parquet(raw, ["conversation_id", "raw_text"])
    tables = load_bundled(bundled)
    result = steps.score(params, conversations, dict(zip(texts["conversation_id"], texts["raw_text"])), tables.topics,
                         tables.countries)
    write_run_facts("judge", result["facts"])
    for name in ("scores", "kept", "rejected"):
        write_parquet(Path(out) / f"{name}.parquet", result[name])
    write_json(Path(plots) / "per_topic.json", result["per_topic"])
    write_json(Path(plots) / "per_country.json", result["per_country"])
    write_json(metrics, result["metrics"])
    m = result["metrics"]
    print(f"judge: {m['judged']} of {m['conversations']} conversations judged" if "judged" in m else "judge: not judged")


@main.command()
@path_option("--replies", "the evaluated models' replies (Parquet), when evaluate has run")
@path_option("--ratings", "the ratings folder: key.csv and filled/ sheets")
@path_option("--out", "the pairwise verdicts to write (Parquet)")
@path_option("--metrics", "win rates, position bias and agreement with people to write (JSON)")
def compare(replies, ratings, out, metrics):
    params, rating = load_section("judge"), load_section("rating")
    replies_path, key_path = Path(replies), Path(ratings) / "key.csv"
    answers = read_parquet(replies_path) if replies_path.is_file() else None
    key = pd.read_csv(key_path, dtype={"item": str}) if key_path.is_file() else None
    humans = {p.stem: read_filled(p, key, rating.criteria, rating.scale)
              for p in sorted((Path(ratings) / "filled").glob("*.csv"))} if key is not None else {}
    result = steps.compare(params, answers, key, humans, rating.criteria, rating.seed)
    write_run_facts("judge-compare", result["facts"])
    write_parquet(out, result["verdicts"])
    write_json(metrics, result["metrics"])
    print(f"judge-compare: {result['metrics']['status']}")


if __name__ == "__main__":
    run_stage(main)
