"""Pin the numeric kernels every stage runs with, so one machine's results are every machine's.

Floating-point sums depend on their order, and the libraries under torch and numpy pick their order at run
time: ATen and oneDNN by the vector instructions of the CPU they find, MKL and OpenBLAS by CPU model, and
every parallel reduction by the thread count. The same seed then trains other weights on another CPU
(docs/reproducibility.md has the measurements). `pin` fixes each choice from params.yaml's
`reproducibility` section, and checks that it took.

Two of the settings are environment variables read when a library loads (OpenBLAS) or first computes (ATen,
MKL). `./run stage` exports them before Python starts (`python -m hiwar.reproducible` prints them), so they
hold from the first operation; `pin` sets the rest in-process and fails when a setting could not take.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hiwar.errors import HiwarError
from hiwar.params import PARAMS_FILE, load_section, read_params
from hiwar.params.reproducibility import ReproducibilityParams


def settings(path: Path = PARAMS_FILE) -> ReproducibilityParams:
    """params.yaml's `reproducibility` section, or the defaults where a folder has none (a test's scratch)."""
    data = read_params(path) if path.exists() else {}
    if "reproducibility" in data:
        return load_section("reproducibility", path, data)
    return ReproducibilityParams()


def environment(pins: ReproducibilityParams) -> dict[str, str]:
    """The variables the libraries read when they load; OMP_NUM_THREADS also fixes MKL's and OpenMP's pools."""
    return {
        "ATEN_CPU_CAPABILITY": pins.cpu_capability,
        "MKL_CBWR": pins.mkl_cbwr,
        "OPENBLAS_CORETYPE": pins.openblas_coretype,
        "OMP_NUM_THREADS": str(pins.threads),
        "MKL_NUM_THREADS": str(pins.threads),
        "OPENBLAS_NUM_THREADS": str(pins.threads),
    }


def pin(pins: ReproducibilityParams) -> None:
    """Apply every setting to this process; HiwarError if one cannot hold (so no result is made unpinned)."""
    for name, value in environment(pins).items():
        os.environ[name] = value  # ATen and MKL read theirs at first use: not too late before any tensor work
    import torch

    torch.set_num_threads(pins.threads)
    torch.backends.mkldnn.enabled = pins.onednn
    got = torch.backends.cpu.get_cpu_capability()
    if pins.cpu_capability != "default" and got != pins.cpu_capability.upper():
        raise HiwarError(
            f"params.yaml: reproducibility.cpu_capability: {pins.cpu_capability} was asked for, but torch runs "
            f"{got} kernels (this CPU lacks {pins.cpu_capability}, or torch computed before the stage started)"
        )
    openblas = _openblas_core()
    if openblas and openblas.lower() != pins.openblas_coretype.lower():
        # OpenBLAS fixes its kernels when numpy loads, before any Python code of ours runs.
        print(f"warning: numpy's OpenBLAS runs {openblas} kernels, not {pins.openblas_coretype}: start stages "
              "through `./run stage` (dvc.yaml does) for results that other machines reproduce", file=sys.stderr)


def _openblas_core() -> str | None:
    from threadpoolctl import threadpool_info

    return next((pool.get("architecture") for pool in threadpool_info() if pool["internal_api"] == "openblas"), None)


if __name__ == "__main__":
    # `./run stage` evaluates these lines before it starts a stage's Python.
    try:
        for name, value in environment(settings()).items():
            print(f"export {name}={value}")
    except HiwarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
