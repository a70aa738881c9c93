"""Stage `split`: leak-free, topic-stratified train/validation/test in the `messages` format, plus a card.
Streams the clean Parquet file in batches; an independent leak check moves leaking conversations to train."""

from hiwar.dedup import hasher_for
from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.splitting import split_file
from hiwar.stage import run_stage


def main():
    metrics = split_file("data/clean/conversations.parquet", "data/split", load_section("split"),
                         hasher_for(load_section("clean")), progress=True)
    write_json("metrics/split.json", metrics)
    moved = metrics["independent_leaks"]["moved_to_train"]
    print(f"split: {metrics['conversations']}; grouping leaks: {metrics['cells_in_several_splits']} cells, "
          f"{metrics['near_duplicate_pairs_across_splits']} near-duplicate pairs; moved to train by the "
          f"independent check: {moved}")


if __name__ == "__main__":
    run_stage(main)
