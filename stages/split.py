"""Stage `split`: train/validation/test by whole grid cells, in the `messages` format."""

from hiwar.io import read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.splitting import split, split_metrics
from hiwar.stage import run_stage


def main():
    params = load_section("split")
    frame = read_parquet("data/clean/conversations.parquet", ["conversation_id", "cell_id", "messages"])
    parts = split(frame, params)
    for name, part in parts.items():
        write_parquet(f"data/split/{name}.parquet", part)
    write_json("metrics/split.json", split_metrics(parts))


if __name__ == "__main__":
    run_stage(main)
