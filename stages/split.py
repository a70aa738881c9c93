"""Stage `split`: leak-free, topic-stratified train/validation/test in the `messages` format, plus a card.
Streams the clean stage's kept file, then the top-up stage's, in batches; an independent leak check moves leaking conversations to train."""

import click

from hiwar.dedup import hasher_for
from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.splitting import split_file
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--clean", "kept conversations to split (Parquet)")
@path_option("--topup", "the top-up stage's kept conversations, split with them (Parquet)")
@path_option("--out", "folder for train, validation and test (Parquet) and the dataset card")
@path_option("--metrics", "split sizes and leak counts to write (JSON)")
def main(clean, topup, out, metrics):
    figures = split_file([clean, topup], out, load_section("split"), hasher_for(load_section("clean")), progress=True)
    write_json(metrics, figures)
    moved = figures["independent_leaks"]["moved_to_train"]
    print(f"split: {figures['conversations']}; grouping leaks: {figures['cells_in_several_splits']} cells, "
          f"{figures['near_duplicate_pairs_across_splits']} near-duplicate pairs; moved to train by the "
          f"independent check: {moved}")


if __name__ == "__main__":
    run_stage(main)
