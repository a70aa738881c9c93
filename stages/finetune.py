"""Stage `finetune@<model>`: fine-tune one base model from params `finetune.models.<model>`.

Checkpoints go to checkpoints/<model>/ (outside the stage's outs, which DVC deletes before a rerun), so an
interrupted run resumes where it stopped; they are removed once the model is saved.
"""

import shutil
from pathlib import Path

import click

from hiwar.errors import HiwarError
from hiwar.io import is_local_path, read_parquet, require_path, write_json, write_run_facts
from hiwar.params import load_section
from hiwar.stage import path_option, run_stage


RUN_FACTS = ("train_seconds", "resumed_from_step")  # true of this run only: kept out of the metrics


@click.command()
@click.argument("name")
@path_option("--train", "conversations to train on (Parquet, `messages`)")
@path_option("--validation", "conversations to validate on (Parquet, `messages`)")
@path_option("--out", "the fine-tuned model folder to write")
@path_option("--live", "DVCLive's folder for this model's curves")
@path_option("--metrics", "the training figures to write (JSON)")
def main(name, train, validation, out, live, metrics):
    params = load_section("finetune")
    if name not in params.models:
        raise HiwarError(f"params.yaml: finetune.models.{name}: no such model (expected one of: {', '.join(params.models)})")
    spec = params.models[name]
    if is_local_path(spec.path):
        require_path(spec.path, f"finetune.models.{name}.path", "a model directory saved with save_pretrained")
    train = read_parquet(train, ["messages"])
    validation = read_parquet(validation, ["messages"])

    from hiwar.training.trainer import finetune_into

    checkpoints = Path("checkpoints") / name
    figures = finetune_into(out, spec, train, validation, checkpoints, params.seed, Path(live), name=name,
                            max_dropped_share=params.max_dropped_share)
    if figures is None:  # not the main process of a multi-process launch: it writes nothing
        return
    write_run_facts(f"finetune-{name}", {k: figures.pop(k) for k in RUN_FACTS})
    write_json(metrics, figures)
    shutil.rmtree(checkpoints, ignore_errors=True)


if __name__ == "__main__":
    run_stage(main)
