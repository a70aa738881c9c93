"""The smollm2 profiles through `dvc repro`, every stage, in a scratch copy of the project: a real instruct model
(SmolLM2-135M-Instruct from its GGUF file) imported by the models stage, then generator, LoRA base and judge,
first in process (smollm2), then with generator and judge behind llama.cpp's server (smollm2-server). Shrunk
to a few conversations so both runs stay minutes on 2 cores. Each stage runs as its own `dvc repro -s`, and
its time is printed (`pytest -s`) and written to the scratch project's stage_times.json."""

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_project

pytestmark = [pytest.mark.slow, pytest.mark.server]

SHRINK = {  # the profile as documented, on fewer and shorter conversations
    "grid": {"conversations": 12},
    "split": {"validation": 0.2, "test": 0.25},  # at least two test conversations for the embedding baseline
    "evaluate": {"max_conversations": 2, "max_new_tokens": 16},
    "finetune": {"models": {"smollm2": {"batch_size": 1}}},  # a few packed rows: batches of 1
    "judge": {"max_new_tokens": 48},
}


def shrunk_project(dest: Path, profile: str, url: str | None = None) -> Path:
    """A scratch project on `profile`, shrunk (SHRINK), its endpoints at `url`, committed."""
    copy_project(dest, profile)
    params = yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))
    for section, changes in SHRINK.items():
        for key, value in changes.items():
            if key == "models":
                for model, fields in value.items():
                    params[section]["models"][model].update(fields)
            else:
                params[section][key] = value
    if url:
        for section in ("generate", "judge"):
            params[section]["http"]["endpoints"][0]["base_url"] = url
    (dest / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for args in (["git", "add", "-A"], ["git", "commit", "-qm", "scratch"]):
        subprocess.run(args, cwd=dest, check=True, capture_output=True)
    return dest


def repro_every_stage(project: Path) -> dict[str, float]:
    """`dvc repro -s` of every stage in dvc.yaml's order (its stages are listed after what they need); seconds each."""
    dvc = str(Path(ROOT / ".venv/bin/dvc")) if (ROOT / ".venv/bin/dvc").exists() else "dvc"
    names = subprocess.run([dvc, "stage", "list", "--name-only"], cwd=project, capture_output=True, text=True,
                           check=True).stdout.split()
    times = {}
    for name in names:
        started = time.perf_counter()
        done = subprocess.run([dvc, "repro", "-s", name], cwd=project, capture_output=True, text=True)
        times[name] = round(time.perf_counter() - started, 1)
        assert done.returncode == 0, f"{name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    status = subprocess.run([dvc, "status"], cwd=project, capture_output=True, text=True, check=True).stdout
    assert "up to date" in status, status
    (project / "stage_times.json").write_text(json.dumps(times, indent=1))
    print(json.dumps(times))
    return times


def check_outputs(project: Path) -> None:
    generated = json.loads((project / "metrics/generate.json").read_text())
    assert generated["requested"] == 12 and generated["failed"] == 0
    clean = json.loads((project / "metrics/clean.json").read_text())
    assert clean["kept"] > 0, clean["first_reasons"]
    assert (project / "models/finetuned/smollm2").is_dir()
    evaluated = json.loads((project / "metrics/evaluate.json").read_text())
    assert "smollm2" in json.dumps(evaluated)
    judged = json.loads((project / "metrics/judge.json").read_text())
    assert judged["status"] == "judged" and judged["judged"] + judged["failed"] == judged["conversations"] == clean["kept"]


def test_the_smollm2_profile_runs_every_stage_in_process(tmp_path):
    project = shrunk_project(tmp_path, "smollm2")
    times = repro_every_stage(project)
    check_outputs(project)
    judged = json.loads((project / "metrics/judge.json").read_text())
    assert judged["malformed_answers"] == 0  # held to the rubric's schema in process (llguidance)
    assert "models" in times and "judge-compare" in times


def test_the_smollm2_server_profile_runs_every_stage_against_llama_cpp(llama_server, tmp_path):
    url, model = llama_server
    assert model == "smollm2"  # the alias the profile names
    project = shrunk_project(tmp_path, "smollm2-server", url)
    repro_every_stage(project)
    check_outputs(project)
    generated = json.loads((project / "metrics/generate.json").read_text())
    assert generated["tokens_out"] > 0
