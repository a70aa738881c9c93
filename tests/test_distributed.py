"""Fine-tuning under `accelerate launch` with 2 CPU processes (gloo) against one process with the same
effective batch: the same loss at every step, and outputs written once, by the main process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, stage_command  # noqa: E402  (the one repository root, in conftest)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project(path: Path, corpus_frame, finetune_spec, base_dir, batch_size: int, launcher: str) -> Path:
    (path / "data/split").mkdir(parents=True)
    corpus_frame(0, 40).to_parquet(path / "data/split/train.parquet")
    corpus_frame(40, 46).to_parquet(path / "data/split/validation.parquet")
    spec = finetune_spec(base_dir, learning_rate=2e-3, batch_size=batch_size, merge=False, save_steps=100,
                         logging_steps=1).model_dump()
    # The bundled conversations are long for this tokenizer at 512 tokens: truncation is not what this test is about.
    params = {"finetune": {"seed": 42, "launcher": launcher, "max_dropped_share": 1.0, "models": {"m": spec}}}
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    return path


def finetune(path: Path, launcher: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([*launcher, *stage_command("finetune", "m")[1:]], cwd=path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def losses(path: Path) -> pd.Series:
    curve = pd.read_csv(path / "dvclive/m/plots/metrics/loss.tsv", sep="\t")
    assert curve["step"].is_unique  # one writer: a second rank would log every step again
    return curve.set_index("step")["loss"]


def test_two_processes_match_one_process_with_the_same_effective_batch(corpus_frame, finetune_spec, base_dir, tmp_path):
    config = ROOT / "configs/accelerate/ddp_cpu.yaml"
    launch = f"accelerate launch --config_file {config}"
    two = project(tmp_path / "two", corpus_frame, finetune_spec, base_dir, batch_size=4, launcher=launch)
    out = finetune(two, [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                         "--main_process_port", str(free_port())])
    assert "2 process(es) x batch 4 x accumulation 1 = effective batch 8" in out.stdout
    one = project(tmp_path / "one", corpus_frame, finetune_spec, base_dir, batch_size=8, launcher="python")
    finetune(one, [sys.executable])

    two_metrics = json.loads((two / "metrics/train/m.json").read_text())
    one_metrics = json.loads((one / "metrics/train/m.json").read_text())
    assert (two_metrics["processes"], two_metrics["effective_batch_size"]) == (2, 8)
    assert (one_metrics["processes"], one_metrics["effective_batch_size"]) == (1, 8)
    assert two_metrics["steps"] == one_metrics["steps"] == 10  # 40 conversations / 8, two epochs
    a, b = losses(two), losses(one)
    assert list(a.index) == list(b.index) and len(a) == 10
    assert ((a - b).abs() / b).max() < 1e-4, pd.DataFrame({"two": a, "one": b})
    assert abs(two_metrics["eval_loss"] - one_metrics["eval_loss"]) < 1e-4

    # Written once, by rank 0: the model, no leftover temporary directories, one metrics file.
    finetuned = two / "models/finetuned"
    assert [p.name for p in finetuned.iterdir()] == ["m"] and (finetuned / "m/model.safetensors").is_file()
    assert not list((two / "models").rglob(".m.*"))
    assert sorted(p.name for p in (two / "metrics/train").iterdir()) == ["m.json"]
