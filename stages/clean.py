"""Stage `clean`: parse raw generations into `messages`, apply the Arabic checks, drop exact duplicates."""

from hiwar.cleaning import clean
from hiwar.io import read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.stage import run_stage


def main():
    params = load_section("clean")
    raw = read_parquet("data/raw/generations.parquet", ["conversation_id", "raw_text", "finish_reason"])
    kept, rejected, metrics = clean(raw, params, progress=True)
    write_parquet("data/clean/conversations.parquet", kept)
    write_parquet("data/clean/rejected.parquet", rejected)
    write_json("metrics/clean.json", metrics)
    print(f"clean: kept {metrics['kept']} of {metrics['input']}; rejections: {metrics['reasons']}")


if __name__ == "__main__":
    run_stage(main)
