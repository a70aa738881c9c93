"""Stage `rating`: agreement between human raters and scores per model, or "not rated".

Answers come from filled sheets (<ratings>/filled/*.csv) and from the rating page (<ratings>/answers.sqlite),
read the same way; the metrics hold agreement and scores, the quality metrics each rater's source,
self-agreement on hidden repeats, time per item and gold share.
"""

from pathlib import Path

import click
import pandas as pd

from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.rating.scores import agreement
from hiwar.rating.sources import collect, quality
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--ratings", "the ratings folder: key.csv, filled/ sheets and the page's answers")
@path_option("--metrics", "agreement and scores to write (JSON)")
@path_option("--quality-metrics", "each rater's source, self-agreement, time per item and gold share (JSON)")
def main(ratings, metrics, quality_metrics):
    params = load_section("rating")
    ratings = Path(ratings)
    if not (ratings / "key.csv").is_file():
        write_json(metrics, {"status": "not rated"})
        write_json(quality_metrics, {"status": "not rated"})
        print(f"rating: not rated (no {ratings / 'key.csv'}; run `hiwar rate export`)")
        return
    key = pd.read_csv(ratings / "key.csv", dtype={"item": str})
    answers, page = collect(ratings, key, params)
    result = agreement(answers, key, params.criteria, params.bootstrap, params.seed, params.mode, params.scale)
    checks = quality(answers, page, params)  # both computed before either is written
    write_json(metrics, result)
    write_json(quality_metrics, checks)
    print(f"rating: {len(answers)} rater(s)" if answers else "rating: not rated (no filled sheets or page answers)")


if __name__ == "__main__":
    run_stage(main)
