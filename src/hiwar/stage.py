"""What every stage script shares: a one-line error and a non-zero exit for problems the user can fix."""

from __future__ import annotations

import os
import sys
from typing import Callable

from hiwar.errors import HiwarError
from hiwar.reproducible import pin, settings


def run_stage(main: Callable[[], None]) -> None:
    # No machine running the pipeline may wait on a model hub; a failed lookup would hang ~50 s.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        pin(settings())  # the same kernels and thread count on every machine (hiwar.reproducible)
        main()
    except HiwarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
