"""Stage `evaluate`: every base model, its fine-tuned self and every baseline, on the test split.

Writes metrics/evaluate.json (stable keys for `dvc metrics diff`), the generated replies with each turn's
history and reference, and plot data: embedding score per topic and perplexity per assistant turn.
"""

from hiwar.evaluation.run import evaluate
from hiwar.io import read_parquet, write_json, write_parquet
from hiwar.params import load_section
from hiwar.stage import run_stage


def main():
    params = load_section("evaluate")
    finetune = load_section("finetune")
    test = read_parquet("data/split/test.parquet", ["conversation_id", "topic", "messages"])
    total = len(test)
    if params.max_conversations:
        test = test.head(params.max_conversations)
        print(f"evaluate: the first {len(test)} of {total} test conversations (evaluate.max_conversations)")
    metrics, replies, per_topic, per_turn = evaluate(test, finetune, params, total)
    write_parquet("data/eval/replies.parquet", replies)
    for variant in per_topic:
        write_json(f"plots/evaluate/per_topic/{variant}.json", per_topic[variant])
        write_json(f"plots/evaluate/per_turn/{variant}.json", per_turn[variant])
    write_json("metrics/evaluate.json", metrics)


if __name__ == "__main__":
    run_stage(main)
