"""Stage `split`: leak-free, topic-stratified train/validation/test in the `messages` format, plus a card."""

from hiwar.dedup import hasher_for
from hiwar.io import atomic_path, read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.splitting import dataset_card, signatures, split, split_metrics
from hiwar.stage import run_stage


def main():
    params = load_section("split")
    frame = read_parquet("data/clean/conversations.parquet", ["conversation_id", "cell_id", "topic", "messages"])
    sigs = signatures(frame, hasher_for(load_section("clean")))
    parts = split(frame, params, sigs)
    metrics = split_metrics(parts, params.leak_threshold, dict(zip(frame["conversation_id"], sigs)))
    for name, part in parts.items():
        write_parquet(f"data/split/{name}.parquet", part)
    with atomic_path("data/split/README.md") as tmp:
        tmp.write_text(dataset_card(parts, metrics, params), encoding="utf-8")
    write_json("metrics/split.json", metrics)
    print(f"split: {metrics['conversations']}; leaks: {metrics['cells_in_several_splits']} cells, "
          f"{metrics['near_duplicate_pairs_across_splits']} near-duplicate pairs")


if __name__ == "__main__":
    run_stage(main)
