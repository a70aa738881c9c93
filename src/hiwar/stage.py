"""What every stage script shares: paths given by dvc.yaml, a one-line error and a non-zero exit for problems
the user can fix."""

from __future__ import annotations

import os
import sys
from typing import Callable

import click

from hiwar import engine
from hiwar.errors import HiwarError
from hiwar.reproducible import pin, settings


def path_option(flag: str, help: str):
    """A path the stage reads or writes. dvc.yaml passes every one from its `vars: paths`, so a path is named
    once, there, and never in a stage script."""
    return click.option(flag, required=True, type=click.Path(path_type=str), help=help)


def run_stage(main: Callable[[], None]) -> None:
    # No machine running the pipeline may wait on a model hub; a failed lookup would hang ~50 s.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        pin(settings())  # the same kernels and thread count on every machine (hiwar.reproducible)
        with engine.running(engine.build(engine.settings())):  # where the stage's batches run
            main()
    except HiwarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
