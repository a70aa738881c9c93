"""Stage `evaluate`: every base model, its fine-tuned self and every baseline, on the test split.

Writes metrics/evaluate.json (stable keys for `dvc metrics diff`), the generated replies with each turn's
history and reference, and plot data: embedding score per topic and perplexity per assistant turn.
"""

from pathlib import Path

import click

from hiwar.evaluation.run import evaluate
from hiwar.io import read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage


@click.command()
@path_option("--test", "the test split (Parquet)")
@path_option("--finetuned", "folder of the fine-tuned models, one per finetune.models entry")
@path_option("--replies", "generated replies with history and reference to write (Parquet)")
@path_option("--plots", "folder for the per-topic and per-turn plot data")
@path_option("--metrics", "the evaluation figures to write (JSON)")
def main(test, finetuned, replies, plots, metrics):
    params = load_section("evaluate")
    finetune = load_section("finetune")
    test = read_parquet(test, ["conversation_id", "topic", "messages"])
    total = len(test)
    if params.max_conversations:
        test = test.head(params.max_conversations)
        print(f"evaluate: the first {len(test)} of {total} test conversations (evaluate.max_conversations)")
    figures, rows, per_topic, per_turn = evaluate(test, finetune, params, finetuned, total)
    write_parquet(replies, rows)
    for variant in per_topic:
        write_json(Path(plots) / "per_topic" / f"{variant}.json", per_topic[variant])
        write_json(Path(plots) / "per_turn" / f"{variant}.json", per_turn[variant])
    write_json(metrics, figures)


if __name__ == "__main__":
    run_stage(main)
