"""Stage `rating`: agreement between human raters and scores per model, or "not rated".

Answers come from filled sheets (ratings/filled/*.csv) and from the rating page (ratings/answers.sqlite),
read the same way; metrics/rating.json holds agreement and scores, metrics/rating_quality.json each
rater's source, self-agreement on hidden repeats, time per item and gold share.
"""

from pathlib import Path

import pandas as pd

from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.rating.scores import agreement
from hiwar.rating.sources import collect, quality
from hiwar.stage import run_stage

RATINGS = Path("ratings")


def main():
    params = load_section("rating")
    if not (RATINGS / "key.csv").is_file():
        write_json("metrics/rating.json", {"status": "not rated"})
        write_json("metrics/rating_quality.json", {"status": "not rated"})
        print("rating: not rated (no ratings/key.csv; run `hiwar rate export`)")
        return
    key = pd.read_csv(RATINGS / "key.csv", dtype={"item": str})
    ratings, page = collect(RATINGS, key, params)
    result = agreement(ratings, key, params.criteria, params.bootstrap, params.seed, params.mode, params.scale)
    checks = quality(ratings, page, params)  # both computed before either is written
    write_json("metrics/rating.json", result)
    write_json("metrics/rating_quality.json", checks)
    print(f"rating: {len(ratings)} rater(s)" if ratings else "rating: not rated (no filled sheets or page answers)")


if __name__ == "__main__":
    run_stage(main)
