"""Stage `grid`: one row per conversation to generate, from topics x countries x dialogue shapes."""

import click

from hiwar.bundled import load_bundled
from hiwar.generation.grid import build_grid
from hiwar.io import write_parquet
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--bundled", "folder of the bundled topics and countries")
@path_option("--grid", "the grid to write (Parquet)")
def main(bundled, grid):
    rows = build_grid(load_section("grid"), load_bundled(bundled))
    write_parquet(grid, rows)
    print(f"grid: {len(rows)} conversations over {rows['cell_id'].nunique()} cells, {rows['topic'].nunique()} topics")


if __name__ == "__main__":
    run_stage(main)
