"""The `reproducibility` section, read by every stage: its CPU kernels and threads, each measured to move
weights between CPUs (docs/reproducibility.md). Every stage lists it in its DVC params."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hiwar.params.base import Section

class ReproducibilityParams(Section):
    cpu_capability: Literal["default", "avx2", "avx512"] = "avx2"  # ATen's vector kernels (ATEN_CPU_CAPABILITY)
    onednn: bool = False  # oneDNN JIT-compiles for the CPU it finds (AVX-512 GELU on some, AVX2 on others)
    mkl_cbwr: str = "AVX2"  # MKL's code branch (MKL_CBWR); COMPATIBLE is CPU-proof but 1.7x slower
    openblas_coretype: str = "Haswell"  # numpy's OpenBLAS kernels (OPENBLAS_CORETYPE); Haswell = AVX2
    threads: int = Field(default=2, ge=1)  # intra-op threads: the split of every parallel reduction


SECTION = ReproducibilityParams
