"""Stage `quality`: diversity, fidelity to the cell, coverage and contamination of the kept conversations (the
clean stage's and the top-up stage's; coverage also before top-up)."""

from functools import partial
from pathlib import Path

import click
import pandas as pd

from hiwar.bundled import load_bundled
from hiwar.encoder import embed
from hiwar.errors import HiwarError
from hiwar.io import read_parquet, write_json, write_run_facts
from hiwar.params import load_section
from hiwar.quality.contamination import read_eval_texts
from hiwar.quality.fidelity import FORMS_FILE, load_forms
from hiwar.quality.run import assess, write_outputs
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--bundled", "folder of the bundled topics and country forms")
@path_option("--clean", "kept conversations (Parquet)")
@path_option("--rejected", "rejected rows with their reasons (Parquet)")
@path_option("--topup-kept", "the top-up stage's kept conversations (Parquet)")
@path_option("--topup-rejected", "the top-up stage's rejected rows (Parquet)")
@path_option("--split", "folder with the train and test splits")
@path_option("--out", "folder to write: decontaminated train, removed rows, cells, the card's quality section")
@path_option("--plots", "folder for plot data and the coverage heatmap")
@path_option("--metrics", "the quality figures to write (JSON)")
def main(bundled, clean, rejected, topup_kept, topup_rejected, split, out, plots, metrics):
    params = load_section("quality")
    tables = load_bundled(bundled)
    columns = ["conversation_id", "topic", "country", "generator", "messages", "variety"]
    first = read_parquet(clean, columns)
    kept = pd.concat([first, read_parquet(topup_kept, columns)[columns]], ignore_index=True)
    dropped = pd.concat([read_parquet(path, ["conversation_id", "topic", "country", "reasons"])
                         [["conversation_id", "topic", "country", "reasons"]] for path in (rejected, topup_rejected)],
                        ignore_index=True)
    splits = {name: read_parquet(Path(split) / f"{name}.parquet", ["conversation_id", "topic", "country", "messages"])
              for name in ("train", "test")}
    names = [f.path.rsplit("/", 1)[-1].rsplit(".", 1)[0] for f in params.eval_files]
    if len(set(names)) < len(names):
        raise HiwarError("params.yaml: quality.eval_files: two files share a name; give them distinct file names")
    eval_texts = {name: read_eval_texts(f.path, f.column) for name, f in zip(names, params.eval_files)}
    forms = load_forms(Path(bundled) / FORMS_FILE, countries=sorted(set(kept["country"])))
    result = assess(kept, dropped, splits, tables.topics, forms, params, partial(embed, encoder=params.encoder),
                    eval_texts, first_round=first)

    write_outputs(result, kept, params, out, plots)
    write_json(metrics, result.metrics)
    write_run_facts("quality", {"seconds": result.seconds})
    d = result.metrics["diversity"]
    print(f"quality: {result.metrics['conversations']} conversations; distinct-2 {d['distinct_2']}, "
          f"self-BLEU {d['self_bleu']}; {result.metrics['coverage']['cells_empty']} empty cells; "
          f"removed from train {result.metrics['contamination']['train_removed']}")


if __name__ == "__main__":
    run_stage(main)
