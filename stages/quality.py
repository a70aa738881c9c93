"""Stage `quality`: diversity, fidelity to the cell, coverage and contamination of the kept conversations."""

from functools import partial

from hiwar.bundled import load_bundled
from hiwar.encoder import embed
from hiwar.io import atomic_path, read_parquet, write_json, write_parquet, write_run_facts
from hiwar.params import load_section
from hiwar.quality.contamination import read_eval_texts
from hiwar.quality.coverage import heatmap
from hiwar.quality.fidelity import load_forms
from hiwar.quality.run import GROUPS, assess, card
from hiwar.stage import run_stage
from hiwar.errors import HiwarError


def main():
    params = load_section("quality")
    bundled = load_bundled()
    columns = ["conversation_id", "topic", "country", "generator", "messages"]
    kept = read_parquet("data/clean/conversations.parquet", columns)
    rejected = read_parquet("data/clean/rejected.parquet", ["conversation_id", "topic", "country", "reasons"])
    splits = {name: read_parquet(f"data/split/{name}.parquet", ["conversation_id", "topic", "country", "messages"])
              for name in ("train", "test")}
    names = [f.path.rsplit("/", 1)[-1].rsplit(".", 1)[0] for f in params.eval_files]
    if len(set(names)) < len(names):
        raise HiwarError("params.yaml: quality.eval_files: two files share a name; give them distinct file names")
    eval_texts = {name: read_eval_texts(f.path, f.column) for name, f in zip(names, params.eval_files)}
    forms = load_forms(countries=sorted(set(kept["country"])))
    result = assess(kept, rejected, splits, bundled.topics, forms, params, partial(embed, encoder=params.encoder),
                    eval_texts)

    for column in GROUPS:
        write_json(f"plots/quality/per_{column}.json", result.per_group[column])
    write_json("plots/quality/kept_cells.json", kept[["topic", "country"]].to_dict("records"))
    with atomic_path("plots/quality/coverage.png") as tmp:
        heatmap(result.cells, tmp)
    write_parquet("data/quality/train.parquet", result.train)
    write_parquet("data/quality/removed.parquet", result.removed)
    with atomic_path("data/quality/cells.csv") as tmp:
        result.cells.to_csv(tmp, index=False)
    with atomic_path("data/quality/README.md") as tmp:
        tmp.write_text(card(result.metrics, params), encoding="utf-8")
    write_json("metrics/quality.json", result.metrics)
    write_run_facts("quality", {"seconds": result.seconds})
    d = result.metrics["diversity"]
    print(f"quality: {result.metrics['conversations']} conversations; distinct-2 {d['distinct_2']}, "
          f"self-BLEU {d['self_bleu']}; {result.metrics['coverage']['cells_empty']} empty cells; "
          f"removed from train {result.metrics['contamination']['train_removed']}")


if __name__ == "__main__":
    run_stage(main)
