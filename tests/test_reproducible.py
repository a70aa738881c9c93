"""hiwar.reproducible: a stage process computes with the pinned kernels and thread count, whatever the
machine would pick, and says so when a pin cannot hold."""

import json
import os
import subprocess
import sys

from conftest import ROOT

PROBE = """
import json, os, torch
from hiwar.params.reproducibility import ReproducibilityParams
from hiwar.reproducible import pin
pin(ReproducibilityParams(threads=3))
a = torch.randn(64, 64); a @ a
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                  "onednn": torch.backends.mkldnn.enabled, "cbwr": os.environ["MKL_CBWR"]}))
"""


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k not in
             ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")}
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean | env, capture_output=True, text=True)


def test_pin_overrides_what_the_machine_and_the_environment_would_choose():
    done = probe(ATEN_CPU_CAPABILITY="default", OMP_NUM_THREADS="1", MKL_VERBOSE="1")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts == {"capability": "AVX2", "threads": 3, "onednn": False, "cbwr": "AVX2"}
    # MKL reports the code branch it ran the matrix product with; unpinned it would say CNR:OFF.
    assert "CNR:OFF" not in done.stdout and "CNR:" in done.stdout


def test_numpy_loaded_before_the_pin_is_reported_not_hidden():
    done = probe()
    assert "warning: numpy's OpenBLAS runs" in done.stderr and "./run stage" in done.stderr


def test_run_stage_exports_the_pins_before_python_starts():
    done = subprocess.run(["./run", "stage", "python", "-c",
                           "import os; print(os.environ['OPENBLAS_CORETYPE'], os.environ['ATEN_CPU_CAPABILITY'])"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Haswell", "avx2"]


def test_a_pin_the_cpu_cannot_hold_stops_the_stage_with_one_line(tmp_path):
    # torch decides its kernels at the first operation: a capability asked for afterwards cannot hold.
    script = ("import torch; torch.ones(2) + 1\n"
              "from hiwar.params.reproducibility import ReproducibilityParams\nfrom hiwar.reproducible import pin\n"
              "pin(ReproducibilityParams(cpu_capability='avx512' if torch.backends.cpu.get_cpu_capability() != "
              "'AVX512' else 'avx2'))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"})
    assert done.returncode != 0
    assert "reproducibility.cpu_capability" in done.stderr
