"""Stage `clean`: parse raw generations into `messages`, apply the Arabic checks, drop duplicates.
Streams the raw Parquet file in batches (memory bounded by the duplicate index, not the texts)."""

import click

from hiwar.cleaning import clean_file
from hiwar.io import write_json
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--raw", "raw generations to clean (Parquet)")
@path_option("--kept", "kept conversations to write (Parquet)")
@path_option("--rejected", "rejected rows to write, each with its reasons (Parquet)")
@path_option("--metrics", "counts per reason, topic and country to write (JSON)")
def main(raw, kept, rejected, metrics):
    counts = clean_file(raw, kept, rejected, load_section("clean"), progress=True)
    write_json(metrics, counts)
    print(f"clean: kept {counts['kept']} of {counts['input']}; rejections: {counts['reasons']}; "
          f"languages: {counts['languages']}; varieties kept: {counts['varieties']}")


if __name__ == "__main__":
    run_stage(main)
