"""Stage `clean`: parse raw generations into `messages`, apply the Arabic checks, drop duplicates.
Streams the raw Parquet file in batches (memory bounded by the duplicate index, not the texts)."""

from hiwar.cleaning import clean_file
from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.stage import run_stage


def main():
    metrics = clean_file("data/raw/generations.parquet", "data/clean/conversations.parquet",
                         "data/clean/rejected.parquet", load_section("clean"), progress=True)
    write_json("metrics/clean.json", metrics)
    print(f"clean: kept {metrics['kept']} of {metrics['input']}; rejections: {metrics['reasons']}")


if __name__ == "__main__":
    run_stage(main)
