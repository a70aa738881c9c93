"""Stage `finetune@<model>`: fine-tune one base model from params `finetune.models.<model>`.

Checkpoints go to checkpoints/<model>/ (outside the stage's outs, which DVC deletes before a rerun), so an
interrupted run resumes where it stopped; they are removed once the model is saved.
"""

import os
import shutil
import tempfile
from pathlib import Path

import click

from hiwar.errors import HiwarError
from hiwar.io import atomic_path, is_local_path, read_parquet, require_path, write_json, write_run_facts
from hiwar.params import load_section
from hiwar.stage import run_stage


RUN_FACTS = ("train_seconds", "resumed_from_step")  # true of this run only: kept out of the metrics


@click.command()
@click.argument("name")
def main(name):
    params = load_section("finetune")
    if name not in params.models:
        raise HiwarError(f"params.yaml: finetune.models.{name}: no such model (expected one of: {', '.join(params.models)})")
    spec = params.models[name]
    if is_local_path(spec.path):
        require_path(spec.path, f"finetune.models.{name}.path", "a model directory saved with save_pretrained")
    train = read_parquet("data/split/train.parquet", ["messages"])
    validation = read_parquet("data/split/validation.parquet", ["messages"])

    from hiwar.training.trainer import finetune

    checkpoints = Path("checkpoints") / name
    # Under `accelerate launch` every process trains; only the main one (rank 0) writes outputs.
    if int(os.environ.get("RANK", "0")) != 0:
        with tempfile.TemporaryDirectory() as scratch:
            finetune(spec, train, validation, Path(scratch), checkpoints, params.seed, name=name,
                     max_dropped_share=params.max_dropped_share)
        return
    with atomic_path(f"models/finetuned/{name}") as out:
        metrics = finetune(spec, train, validation, out, checkpoints, params.seed, live_dir=Path("dvclive") / name,
                           name=name, max_dropped_share=params.max_dropped_share)
    write_run_facts(f"finetune-{name}", {k: metrics.pop(k) for k in RUN_FACTS})
    write_json(f"metrics/train/{name}.json", metrics)
    shutil.rmtree(checkpoints, ignore_errors=True)


if __name__ == "__main__":
    run_stage(main)
