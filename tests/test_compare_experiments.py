"""`hiwar compare` on real DVC experiments: a scratch project (a toy one-stage pipeline whose metrics and
replies follow two params), three experiments queued and run by `dvc queue start`, then the comparison."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TRAIN = '''\
"""Toy stage: metrics and replies that follow train.lr and train.layers."""
import json, os
import pandas as pd
import yaml

p = yaml.safe_load(open("params.yaml"))["train"]
ppl = round(100 / (1 + 10 * p["lr"]) + 3 * p["layers"], 3)
score = round(0.05 * p["layers"] - p["lr"], 4)
os.makedirs("metrics", exist_ok=True)
json.dump({"models": {"toy": {"finetuned": {"perplexity": ppl, "embedding_score_rescaled": score,
          "embedding_score_rescaled_ci95": [round(score - 0.02, 4), round(score + 0.03, 4)], "chrf": 5.0}}}},
          open("metrics/evaluate.json", "w"))
rows = []
for turn in range(3):
    history = [{"role": "user", "content": f"ما رأيك في الرحلة رقم {turn + 1} إلى جدة؟"}]
    rows.append({"turn": turn, "conversation_id": f"c{turn}", "topic": "السفر", "turn_in_conversation": 1,
                 "history": history, "reference": "رحلة جميلة، أنصحك بزيارة البلد القديم.", "model": "toy",
                 "kind": "finetuned",
                 "reply": f"زُر البلد القديم في جدة صباحًا. (الدور {turn + 1}، الطبقات {p['layers']}، المعدل {p['lr']})"})
os.makedirs("data/eval", exist_ok=True)
pd.DataFrame(rows).to_parquet("data/eval/replies.parquet")
'''

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [train]
    outs: [data/eval/replies.parquet]
    metrics:
      - metrics/evaluate.json:
          cache: false
"""

PARAMS = "train:\n  lr: 0.01\n  layers: 2\n  name: toy\n  tags: [a, b]\n"
EXPERIMENTS = {"lr-high": ["train.lr=0.02"], "deeper": ["train.layers=4"], "both": ["train.lr=0.005", "train.layers=3"]}


def sh(cwd, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@t.invalid", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t.invalid")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc.stdout


def make_project(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.py").write_text(TRAIN, encoding="utf-8")
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / "params.yaml").write_text(PARAMS)
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "dvc", "init", "-q")
    sh(path, "dvc", "config", "core.analytics", "false")
    sh(path, "dvc", "repro", "-q")
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "toy pipeline")
    return path


def run_queued(path: Path, experiments: dict) -> None:
    for name, changes in experiments.items():
        sh(path, "dvc", "exp", "run", "--queue", "-n", name, *(a for c in changes for a in ("-S", c)))
    sh(path, "dvc", "queue", "start", "-j", "1")
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            status = sh(path, "dvc", "queue", "status")
            if sum(("Success" in line or "Failed" in line) for line in status.splitlines()) >= len(experiments):
                break
            time.sleep(2)
    finally:
        subprocess.run(["dvc", "queue", "stop"], cwd=path, capture_output=True)
    assert "Failed" not in status and "Success" in status, status


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = make_project(tmp_path_factory.mktemp("toy"))
    run_queued(path, EXPERIMENTS)
    return path


def test_three_queued_experiments_give_two_param_columns_one_row_each_and_typed_values(project):
    output = sh(project, "hiwar", "compare", "--out", "reports/compare")
    with open(project / "reports/compare/compare.csv", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    header = list(table[0])
    params = header[header.index("baseline") + 1:header.index("metrics/evaluate.json:models.toy.finetuned.perplexity")]
    assert sorted(params) == ["train.layers", "train.lr"]  # name and tags are equal everywhere
    assert sorted(r["experiment"] for r in table) == ["both", "deeper", "lr-high", "main"]
    assert [r["kind"] for r in table].count("commit") == 1 and [r["kind"] for r in table].count("experiment") == 3
    by_name = {r["experiment"]: r for r in table}
    assert by_name["deeper"]["train.layers"] == "4" and by_name["main"]["train.layers"] == "2"  # ints, not 4.0
    assert by_name["both"]["train.lr"] == "0.005" and by_name["lr-high"]["train.lr"] == "0.02"
    ci = "metrics/evaluate.json:models.toy.finetuned.embedding_score_rescaled_ci95_low"
    assert float(by_name["deeper"][ci]) == pytest.approx(0.05 * 4 - 0.01 - 0.02)  # read from the exp's own file
    assert "deeper (on main)" in output and "lr-high (on main)" in output

    page = (project / "reports/compare/index.html").read_text(encoding="utf-8")
    for layers, lr in ((2, 0.01), (4, 0.01), (2, 0.02), (3, 0.005)):  # each row's replies, read through DVC
        assert f"(الدور 1، الطبقات {layers}، المعدل {lr})" in page
    lines = {line.split(" |")[0][2:]: line for line in
             (project / "reports/compare/compare.md").read_text(encoding="utf-8").splitlines() if line.startswith("| ")}
    assert "**89.33**" in lines["lr-high (on main)"]  # lowest perplexity: 100 / 1.2 + 3 * 2
    assert "**0.19 [0.17, 0.22]**" in lines["deeper (on main)"]  # highest score: 0.05 * 4 - 0.01, with its CI
    assert sum(line.count("**") for line in lines.values()) == 4  # two metrics differ, one best each (chrf ties)


def test_naming_an_experiment_and_the_row_limit(project):
    output = sh(project, "hiwar", "compare", "--max-rows", "2", "--out", "reports/two", "deeper")
    assert "2 more rows left out by the row limit" in output
    with open(project / "reports/two/compare.csv", encoding="utf-8") as handle:
        names = [r["experiment"] for r in csv.DictReader(handle)]
    assert names == ["main", "deeper"]  # the named experiment is kept before the others


def test_saved_exp_show_fixture_matches_what_dvc_writes(project, root):
    """tests/fixtures/exp_show.json is this project's `dvc exp show --json`, saved (timestamps and hashes kept)."""
    saved = json.loads((root / "tests/fixtures/exp_show.json").read_text(encoding="utf-8"))
    live = json.loads(sh(project, "dvc", "exp", "show", "--json"))
    assert [sorted(c) for c in saved] == [sorted(c) for c in live]  # same shape: keys of each entry
    assert sorted(e["name"] for c in live for g in c.get("experiments") or [] for e in g["revs"]) == \
        sorted(e["name"] for c in saved for g in c.get("experiments") or [] for e in g["revs"])


def test_experiments_on_an_older_commit_are_pointed_out_and_shown_on_request(project):
    """The issue's story: after a new commit, HEAD has no experiments; the run says where they are."""
    (project / "NOTES.md").write_text("release\n")
    sh(project, "git", "add", "NOTES.md")
    sh(project, "git", "commit", "-qm", "release")
    output = sh(project, "hiwar", "compare", "--out", "reports/after", "--samples", "0")
    assert "3 experiments on other commits (both, deeper, lr-high): name them, or --all-experiments" in output
    sh(project, "hiwar", "compare", "--out", "reports/all", "--all-experiments", "--samples", "0")
    with open(project / "reports/all/compare.csv", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["experiment"], r["kind"]) for r in table][0] == ("main", "commit")  # the new HEAD
    assert sorted((r["experiment"], r["baseline"]) for r in table if r["kind"] == "experiment") == \
        [("both", table[1]["experiment"]), ("deeper", table[1]["experiment"]), ("lr-high", table[1]["experiment"])]
    assert table[1]["kind"] == "commit" and len(table) == 5  # the commit they were run on
    sh(project, "hiwar", "compare", "--out", "reports/named", "--samples", "0", "HEAD~1")
    with open(project / "reports/named/compare.csv", encoding="utf-8") as handle:
        assert [r["experiment"] for r in csv.DictReader(handle)] == ["main", table[1]["experiment"]]
