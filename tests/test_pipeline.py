"""The DVC pipeline end to end in a scratch copy of the project, on micro params (fake generation backend,
a few training steps), so it stays a couple of minutes on 2 cores. The real generator path is covered by
test_generation_backends.py; the full tiny profile is `./run pipeline`."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["models", "grid", "generate", "clean", "split", "finetune@tiny_arabiangpt", "finetune@tiny_aragpt2", "evaluate",
          "ratings"]


def sh(cwd, *args, check=True):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t.invalid")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def ran(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def micro(params: dict) -> dict:
    for spec in [*params["models"]["generator"].values(), *params["models"]["bases"].values()]:
        spec["steps"] = 4
    params["grid"]["conversations"] = 120
    params["generate"]["backend"] = "fake"
    for spec in params["finetune"]["models"].values():
        spec["epochs"] = 1
    params["evaluate"]["max_conversations"] = 3
    params["evaluate"]["max_new_tokens"] = 4
    params["evaluate"]["bootstrap"] = 50
    # A fine-tuned model has its own chat template, so it can stand in for an instruction-tuned baseline.
    params["evaluate"]["baselines"] = {"chat_model": {"path": "models/finetuned/tiny_arabiangpt", "trust_remote_code": False}}
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("hiwar")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if name.startswith(("metrics/", "dvclive/")) or name == "dvc.lock":
            continue  # the scratch run makes its own
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    (repo / "params.yaml").write_text(yaml.safe_dump(micro(params), allow_unicode=True, sort_keys=False), encoding="utf-8")
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "scratch")
    first = sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "first run")
    return repo, first.stdout


def test_first_repro_runs_every_stage_and_writes_every_output(repo):
    path, output = repo
    assert ran(output) == STAGES
    for out in ["models/generator/tiny_generator/config.json", "models/base/tiny_aragpt2/tokenizer.json",
                "data/grid.parquet", "data/raw/generations.parquet", "data/clean/rejected.parquet",
                "data/split/test.parquet", "models/finetuned/tiny_aragpt2/adapter/adapter_config.json",
                "models/finetuned/tiny_arabiangpt/chat_template.jinja", "data/eval/replies.parquet",
                "data/split/README.md", "dvclive/tiny_aragpt2/plots/metrics/loss.tsv"]:
        assert (path / out).exists(), out
    clean = json.loads((path / "metrics/clean.json").read_text())
    assert clean["input"] == 120 == clean["kept"] + clean["rejected"]
    evaluate = json.loads((path / "metrics/evaluate.json").read_text())
    for name in ("tiny_arabiangpt", "tiny_aragpt2"):
        for kind in ("base", "finetuned"):
            assert evaluate["models"][name][kind]["perplexity"] > 1
            assert 0 <= evaluate["models"][name][kind]["chrf"] <= 100
    assert evaluate["baselines"]["chat_model"]["baseline"]["perplexity"] == evaluate["models"]["tiny_arabiangpt"]["finetuned"]["perplexity"]
    assert json.loads((path / "metrics/ratings.json").read_text()) == {"status": "not rated"}
    report = sh(path, "hiwar", "report")
    assert "report.md written" in report.stdout and (path / "reports/perplexity_per_turn.png").exists()
    assert "| tiny_aragpt2 | finetuned | lora |" in (path / "reports/report.md").read_text()


def test_second_repro_runs_nothing(repo):
    path, _ = repo
    again = sh(path, "dvc", "repro")
    assert ran(again.stdout) == []
    assert "Data and pipelines are up to date" in sh(path, "dvc", "status").stdout


def test_exp_run_with_a_finetune_param_reruns_only_finetune_and_evaluate(repo):
    path, _ = repo
    exp = sh(path, "dvc", "exp", "run", "-S", "finetune.models.tiny_arabiangpt.learning_rate=0.005")
    assert ran(exp.stdout) == ["finetune@tiny_arabiangpt", "evaluate"]

    table = list(csv.DictReader(io.StringIO(sh(path, "dvc", "exp", "show", "--csv").stdout)))
    assert len(table) >= 2  # the committed baseline and the experiment
    column = "models.tiny_arabiangpt.finetuned.perplexity"
    assert column in table[0] and len({row[column] for row in table}) == 2

    diff = sh(path, "dvc", "metrics", "diff", "--json").stdout
    changed = json.loads(diff)
    assert any(k.startswith("models.tiny_arabiangpt.finetuned") for k in changed["metrics/evaluate.json"])
    assert "metrics/generate.json" not in changed
