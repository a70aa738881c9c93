"""Stage `card`: the published folder's Hugging Face dataset card (README.md) and Croissant metadata with its
Responsible-AI fields (croissant.json), from the split files as written and the metrics of every stage before.
It runs after `quality`, whose coverage and bias figures both cards quote (docs/dataset-cards.md)."""

from pathlib import Path

import click

from hiwar import engine
from hiwar.cards.facts import Inputs, Params
from hiwar.cards.run import write_cards
from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--split", "the published folder: the three splits in, README.md and croissant.json out")
@path_option("--grid", "the grid the conversations were asked for (Parquet)")
@path_option("--cells", "the quality stage's coverage cells (CSV)")
@path_option("--generators", "where the models stage writes stand-in generators (to tell one from a real model)")
@path_option("--generate-metrics", "stage generate's metrics (JSON)")
@path_option("--clean-metrics", "stage clean's metrics (JSON)")
@path_option("--split-metrics", "stage split's metrics (JSON)")
@path_option("--quality-metrics", "stage quality's metrics (JSON)")
@path_option("--topup-metrics", "stage topup's metrics (JSON)")
@path_option("--metrics", "the card stage's figures to write: rows, bytes, script shares, the personal-data scan")
def main(split, grid, cells, generators, generate_metrics, clean_metrics, split_metrics, quality_metrics, topup_metrics,
         metrics):
    inputs = Inputs(split=Path(split), grid=Path(grid), cells=Path(cells), generators=Path(generators),
                    generate_metrics=Path(generate_metrics), clean_metrics=Path(clean_metrics),
                    split_metrics=Path(split_metrics), quality_metrics=Path(quality_metrics),
                    topup_metrics=Path(topup_metrics))
    params = Params(load_section("card"), load_section("generate"), load_section("clean"), load_section("split"),
                    load_section("quality"))
    figures = write_cards(inputs, params, split, engine.current().batch_rows)
    write_json(metrics, figures)
    scan = figures["personal_data"]
    print(f"card: {split}/README.md and croissant.json for {figures['conversations']}; personal-data scan: "
          f"{sum(scan['turns_with_a_match'].values())} matches in {scan['turns_scanned']} turns")


if __name__ == "__main__":
    run_stage(main)
