"""Stage `rating`: agreement between human raters and mean scores per model, or "not rated"."""

from pathlib import Path

import pandas as pd

from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.evaluation.rating import agreement, read_filled
from hiwar.stage import run_stage

RATINGS = Path("ratings")


def main():
    params = load_section("rating")
    sheets = sorted((RATINGS / "filled").glob("*.csv"))
    if not sheets or not (RATINGS / "key.csv").is_file():
        write_json("metrics/rating.json", {"status": "not rated"})
        print("rating: not rated (no filled sheets in ratings/filled)")
        return
    key = pd.read_csv(RATINGS / "key.csv", dtype={"item": str})
    ratings = {path.stem: read_filled(path, key, params.criteria, params.scale) for path in sheets}
    write_json("metrics/rating.json", agreement(ratings, key, params.criteria, params.bootstrap, params.seed))


if __name__ == "__main__":
    run_stage(main)
