"""Stage `grid`: one row per conversation to generate, from topics x countries x dialogue shapes."""

from hiwar.generation.grid import build_grid
from hiwar.io import write_parquet
from hiwar.params import load_section
from hiwar.bundled import load_bundled
from hiwar.stage import run_stage


def main():
    params = load_section("grid")
    grid = build_grid(params, load_bundled())
    write_parquet("data/grid.parquet", grid)
    print(f"grid: {len(grid)} conversations over {grid['cell_id'].nunique()} cells, {grid['topic'].nunique()} topics")


if __name__ == "__main__":
    run_stage(main)
