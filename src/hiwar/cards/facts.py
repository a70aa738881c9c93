"""Everything the two cards say, gathered once from the stage outputs and params, so that README.md and
croissant.json cannot disagree: the split files (stats.py), the metrics of generate, clean, split and quality,
the grid, the quality stage's coverage cells, the prompt template, and the params the card stage lists.

Inputs that disagree with each other (a metrics file older than the splits) stop the stage: a card is never
written from a mix of two runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from hiwar.cards.stats import SPLITS, FileFacts, SplitStats, read_splits
from hiwar.errors import HiwarError
from hiwar.io import read_json
from hiwar.params.card import CardParams
from hiwar.params.clean import CleanParams
from hiwar.params.generate import GenerateParams
from hiwar.params.quality import QualityParams
from hiwar.params.split import SplitParams

CHAT_TEMPLATE = "chat"  # rendered as the user's request only; the model's own chat template wraps it


@dataclass
class Inputs:
    """The card stage's inputs, as dvc.yaml passes them."""

    split: Path  # the published folder: train/validation/test.parquet in, README.md and croissant.json out
    grid: Path
    cells: Path  # the quality stage's coverage cells (topic, country, requested, kept)
    generators: Path  # where the models stage writes the stand-in generators
    generate_metrics: Path
    clean_metrics: Path
    split_metrics: Path
    quality_metrics: Path
    topup_metrics: Path | None = None  # stage topup's metrics; None: a project without top-up rounds


@dataclass
class Params:
    card: CardParams
    generate: GenerateParams
    clean: CleanParams
    split: SplitParams
    quality: QualityParams


@dataclass
class Facts:
    params: Params
    folder: str  # the published folder as dvc.yaml names it
    stats: SplitStats
    files: dict[str, FileFacts]
    schema: object  # pyarrow.Schema of the split files
    generator: dict  # ids, kind (stand-in | fake | model), revision, backend, decoding, template name and text
    grid: dict
    coverage: dict
    generate: dict  # metrics/generate.json
    clean: dict
    split: dict
    quality: dict
    topup: dict | None = None  # metrics/topup.json: extra requests, cells at quota, the shortfall


def template_text(name: str) -> str:
    """The prompt template's Jinja source as the generation stage reads it, its leading comment left out."""
    path = resources.files("hiwar.generation").joinpath("templates", f"{name}.j2")
    if not path.is_file():
        raise HiwarError(f"params.yaml: generate.template: no template {name!r} in hiwar's generation templates")
    return re.sub(r"^\{#.*?#\}\s*", "", path.read_text(encoding="utf-8"), flags=re.DOTALL).rstrip()


def generator_facts(stats: SplitStats, params: GenerateParams, generators: Path) -> dict:
    ids = sorted(stats.column_values["generator"]) or [params.model]
    templates = sorted(stats.column_values["template"]) or [params.template]
    if len(templates) > 1:
        raise HiwarError(f"split files: conversations from {len(templates)} prompt templates ({', '.join(templates)}); "
                         "the cards describe one")
    standin_root = generators.as_posix().rstrip("/") + "/"
    kinds = {"fake" if g == "fake" else "stand-in" if g.startswith(standin_root) else "model" for g in ids}
    return {
        "ids": ids, "kind": kinds.pop() if len(kinds) == 1 else "mixed", "revision": params.revision,
        "backend": params.backend, "template": templates[0], "template_text": template_text(templates[0]),
        "few_shot": params.few_shot,
        "decoding": {"temperature": params.temperature, "top_p": params.top_p,
                     "max_new_tokens": params.max_new_tokens, "seed": params.seed},
    }


def grid_facts(path: Path) -> dict:
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected the output of stage `grid`)")
    grid = pd.read_parquet(path, columns=["cell_id", "topic", "country", "exchanges", "persona", "persona_ar"])
    personas = grid.drop_duplicates("persona").set_index("persona")["persona_ar"].sort_index()
    return {"conversations": len(grid), "cells": int(grid["cell_id"].nunique()),
            "topics": int(grid["topic"].nunique()), "countries": int(grid["country"].nunique()),
            "exchanges": {int(k): int(v) for k, v in grid["exchanges"].value_counts().sort_index().items()},
            "personas": {str(k): str(v) for k, v in personas.items()}}


def coverage_facts(path: Path) -> dict:
    """Topics and countries the grid asked for that kept no conversation, and the kept share of each."""
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected the coverage cells of stage `quality`)")
    cells = pd.read_csv(path, keep_default_na=False)  # `NA` is Namibia's code, not a missing value
    out = {}
    for column in ("topic", "country"):
        per = cells.groupby(column)[["requested", "kept"]].sum()
        out[f"{column}_none_kept"] = sorted(per.index[per["kept"] == 0].astype(str))
        out[f"{column}_requested"] = int(len(per))
        rate = (per["kept"] / per["requested"]).sort_values(kind="stable")
        out[f"{column}_kept_rate"] = {"min": round(float(rate.min()), 4), "max": round(float(rate.max()), 4)}
    return out


def _agree(what: str, found, expected, rerun: str) -> None:
    if found != expected:
        raise HiwarError(f"{what}: {found} here but {expected} in the split files (an input is older than the "
                         f"splits; run `dvc repro {rerun}`)")


def gather(inputs: Inputs, params: Params, folder: str, batch_rows: int = 2048) -> Facts:
    stats, files, schema = read_splits(inputs.split, batch_rows)
    metrics = {}
    for name, path in (("generate", inputs.generate_metrics), ("clean", inputs.clean_metrics),
                       ("split", inputs.split_metrics), ("quality", inputs.quality_metrics)):
        metrics[name] = read_json(path)
        if metrics[name] is None:
            raise HiwarError(f"{path}: file not found (expected the metrics of stage `{name}`)")
    topup = read_json(inputs.topup_metrics) if inputs.topup_metrics else None
    if inputs.topup_metrics and topup is None:
        raise HiwarError(f"{inputs.topup_metrics}: file not found (expected the metrics of stage `topup`)")
    grid = grid_facts(inputs.grid)
    _agree(f"{inputs.split_metrics}: conversations", metrics["split"]["conversations"], dict(stats.rows), "split")
    _agree(f"{inputs.clean_metrics} and the top-up metrics: kept",
           metrics["clean"]["kept"] + (topup["kept"] if topup else 0), stats.total, "clean topup split")
    _agree(f"{inputs.quality_metrics}: conversations", metrics["quality"]["conversations"], stats.total, "quality")
    _agree(f"{inputs.generate_metrics}: requested", metrics["generate"]["requested"], grid["conversations"], "generate")
    return Facts(params=params, folder=folder, stats=stats, files=files, schema=schema,
                 generator=generator_facts(stats, params.generate, inputs.generators), grid=grid,
                 coverage=coverage_facts(inputs.cells), topup=topup, **metrics)


def size_category(n: int) -> str:
    """The hub's size category of a dataset of n rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if n < bound), "n>1B")


__all__ = ["SPLITS", "Facts", "Inputs", "Params", "gather", "size_category"]
