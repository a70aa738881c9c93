"""stages/quality.py end to end in a scratch folder: its files, and one-line errors on bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hiwar.reproducible import environment, settings
from conftest import stage_command

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, bundled):
    shutil.copytree(ROOT / "data/bundled", tmp_path / "data/bundled")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["quality"]["embed_sample"] = 8
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    rows = [{"conversation_id": f"k{i:03d}", "cell_id": f"{c['topic']}:EG", "topic": c["topic"], "country": "EG",
             "generator": "fake", "messages": c["messages"], "language": "ar", "variety": "msa"}
            for i, c in enumerate(bundled.conversations[:40])]  # the clean stage's columns
    frame = pd.DataFrame(rows)
    (tmp_path / "data/clean").mkdir()
    (tmp_path / "data/split").mkdir()
    frame.iloc[:30].to_parquet(tmp_path / "data/clean/conversations.parquet")
    frame.iloc[30:].assign(reasons=[["near_duplicate"]] * 10).to_parquet(tmp_path / "data/clean/rejected.parquet")
    (tmp_path / "data/topup").mkdir()  # the top-up stage's: two more kept in the cells, one rejected
    frame.iloc[:3].assign(conversation_id=["t0", "t1", "t2"], round=1).iloc[:2].to_parquet(tmp_path / "data/topup/kept.parquet")
    frame.iloc[2:3].assign(conversation_id="t2", round=1, reasons=[["truncated"]]).to_parquet(
        tmp_path / "data/topup/rejected.parquet")
    frame.iloc[:24].to_parquet(tmp_path / "data/split/train.parquet")
    frame.iloc[24:30].to_parquet(tmp_path / "data/split/test.parquet")
    return tmp_path


def run_stage(path):
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    # The kernel pins, as `./run stage` sets them (a stage started without them warns on stderr).
    env |= environment(settings(ROOT / "params.yaml"))
    return subprocess.run(stage_command("quality"), cwd=path, env=env, capture_output=True, text=True)


def set_quality(path, **values):
    params = yaml.safe_load((path / "params.yaml").read_text(encoding="utf-8"))
    params["quality"].update(values)
    (path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")


def test_a_missing_eval_file_is_one_line_and_writes_nothing(project):
    set_quality(project, eval_files=[{"path": "benchmarks/questions.jsonl", "column": "question"}])
    proc = run_stage(project)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: params.yaml: quality.eval_files: benchmarks/questions.jsonl: file not found "
                                   "(expected JSONL, CSV, Parquet or text)")
    assert not (project / "metrics").exists() and not (project / "data/quality").exists()


def test_an_eval_file_without_its_column_is_named(project):
    (project / "questions.csv").write_text("id,prompt\n1,ما عاصمة مصر؟\n", encoding="utf-8")
    set_quality(project, eval_files=[{"path": "questions.csv"}])
    proc = run_stage(project)
    assert proc.returncode == 2 and "questions.csv: no column 'text' (columns: id, prompt)" in proc.stderr


@pytest.mark.slow
def test_the_stage_writes_metrics_plots_card_and_a_decontaminated_train(project):
    test_text = pd.read_parquet(project / "data/split/test.parquet")["messages"].iloc[0][1]["content"]
    (project / "benchmark.txt").write_text(test_text + "\n", encoding="utf-8")
    set_quality(project, eval_files=[{"path": "benchmark.txt"}], decontaminate=True)
    train = pd.read_parquet(project / "data/split/train.parquet")
    planted = train.iloc[[0]].copy()
    planted.at[planted.index[0], "messages"] = [*train["messages"][0][:-1], {"role": "assistant", "content": test_text}]
    pd.concat([planted, train.iloc[1:]]).to_parquet(project / "data/split/train.parquet")
    clean = pd.read_parquet(project / "data/clean/conversations.parquet")
    clean.at[0, "messages"] = planted["messages"].iloc[0]
    clean.to_parquet(project / "data/clean/conversations.parquet")

    proc = run_stage(project)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((project / "metrics/quality.json").read_text())
    assert list(metrics) == ["conversations", "diversity", "fidelity", "coverage", "variety", "contamination"]
    assert metrics["contamination"]["test"]["train_conversations_13gram"] == 1
    # the top-up stage's two kept rows count, and coverage is given before top-up too
    assert metrics["conversations"] == 32 and metrics["coverage"]["before_topup"]["cells_kept"] >= 1
    cells = pd.read_csv(project / "data/quality/cells.csv", keep_default_na=False)
    assert cells["kept"].sum() == 32 and cells["kept_before"].sum() == 30 and cells["requested"].sum() == 43
    assert metrics["contamination"]["eval_files"]["benchmark"]["train_conversations_13gram"] == 1
    removed = pd.read_parquet(project / "data/quality/removed.parquet")
    assert list(removed["conversation_id"]) == ["k000"]
    assert list(removed["reasons"][0]) == ["contaminated_test", "contaminated_eval:benchmark"]
    assert len(pd.read_parquet(project / "data/quality/train.parquet")) == 23
    for name in ("per_topic.json", "per_country.json", "per_generator.json", "kept_cells.json", "coverage.png"):
        assert (project / "plots/quality" / name).stat().st_size > 0
    assert "removed from train (quality.decontaminate = true): 1" in (project / "data/quality/README.md").read_text()
    facts = json.loads((project / "logs/runs/quality.json").read_text())
    assert "embeddings" in facts["seconds"] and "seconds" not in json.dumps(metrics)
