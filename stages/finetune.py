"""Stage `finetune@<model>`: fine-tune one base model from params `finetune.models.<model>`."""

import tempfile
from pathlib import Path

import click

from hiwar.errors import HiwarError
from hiwar.io import atomic_path, read_parquet, require_path, write_json
from hiwar.params import load_section
from hiwar.stage import run_stage


@click.command()
@click.argument("name")
def main(name):
    params = load_section("finetune")
    if name not in params.models:
        raise HiwarError(f"params.yaml: finetune.models.{name}: no such model (expected one of: {', '.join(params.models)})")
    spec = params.models[name]
    if Path(spec.path).parts[0] in (".", "models", "data"):
        require_path(spec.path, f"finetune.models.{name}.path", "a model directory saved with save_pretrained")
    train = read_parquet("data/split/train.parquet", ["messages"])
    validation = read_parquet("data/split/validation.parquet", ["messages"])

    from hiwar.training import finetune

    with atomic_path(f"models/finetuned/{name}") as out, tempfile.TemporaryDirectory() as work:
        metrics, curve = finetune(spec, train, validation, out, Path(work), params.seed)
    write_json(f"metrics/train/{name}.json", metrics)
    write_json(f"plots/train/{name}.json", curve)


if __name__ == "__main__":
    run_stage(main)
