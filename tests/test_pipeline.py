"""The DVC pipeline end to end in a scratch copy of the project, on the ci profile (fake generation backend,
a few training steps), so it stays a couple of minutes on 2 cores. The real generator path is covered by
test_generation_backends.py; the full tiny profile is `./run pipeline`."""

import csv
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_project  # noqa: E402  (the one repository root, in conftest)


pytestmark = pytest.mark.slow

STAGES = ["models", "grid", "generate", "clean", "topup", "split", "quality", "card", "finetune@tiny_arabiangpt",
          "finetune@tiny_aragpt2", "evaluate", "rating", "judge", "judge-compare"]


def sh(cwd, *args, check=True, env=None, drop=()):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t.invalid") | (env or {})
    for name in drop:
        env.pop(name, None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def digests(root: Path, parts=("data", "models", "metrics")) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest()
            for part in parts for f in sorted((root / part).rglob("*")) if f.is_file() and "bundled" not in f.parts}


def ran(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def ci_project(dest: Path) -> Path:
    """The project on the ci profile (profiles/ci.yaml), in a new git repository with nothing committed yet."""
    return copy_project(dest, "ci")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = ci_project(tmp_path_factory.mktemp("hiwar"))
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
                "data/split/README.md", "dvclive/tiny_aragpt2/plots/metrics/loss.tsv",
                "data/quality/README.md", "metrics/quality.json", "plots/quality/coverage.png",
                "data/split/croissant.json", "metrics/card.json"]:
        assert (path / out).exists(), out
    # Tracked curves hold no timings, which would differ on every rerun.
    assert not [f for f in (path / "dvclive").rglob("*") if "runtime" in f.name or "per_second" in f.name]
    assert "runtime" not in (path / "dvclive/tiny_aragpt2/metrics.json").read_text()
    clean = json.loads((path / "metrics/clean.json").read_text())
    assert clean["input"] == 120 == clean["kept"] + clean["rejected"]
    # Top-up rounds: every extra request kept or rejected, within the budget, and the splits hold both stages' rows.
    topup = json.loads((path / "metrics/topup.json").read_text())
    assert topup["status"] == "on" and 0 < topup["extra_requests"] <= topup["budget_requests"] == 60
    assert topup["kept"] + topup["rejected"] == topup["extra_requests"]
    split = json.loads((path / "metrics/split.json").read_text())
    assert sum(split["conversations"].values()) == clean["kept"] + topup["kept"]
    assert (path / "metrics/topup_shortfall.csv").exists() and (path / "data/topup/cells.csv").exists()
    evaluate = json.loads((path / "metrics/evaluate.json").read_text())
    assert evaluate["test_conversations"] == 3 <= evaluate["test_conversations_total"]  # capped: says of how many
    for name in ("tiny_arabiangpt", "tiny_aragpt2"):
        for kind in ("base", "finetuned"):
            assert 0 <= evaluate["models"][name][kind]["chrf"] <= 100
        base, tuned = evaluate["models"][name]["base"], evaluate["models"][name]["finetuned"]
        # Fine-tuning lowers held-out perplexity on the same tokens (on the tiny profile by about 30%; these
        # ci profile trains one short epoch, so only the direction is asserted). Loading the base weights as
        # the fine-tuned model, or saving an untrained adapter, gives equal perplexities and fails here.
        assert tuned["tokens"] == base["tokens"] and tuned["perplexity"] < base["perplexity"]
        paired = evaluate["models"][name]["finetuned_minus_base"]
        assert paired["perplexity"]["ratio"] == round(math.exp(paired["perplexity"]["mean_nll_difference"]), 4) < 1
        assert 0 < paired["perplexity"]["p_value"] <= 1 and set(paired) >= {"embedding_score", "chrf"}
    assert evaluate["baselines"]["chat_model"]["baseline"]["perplexity"] == evaluate["models"]["tiny_arabiangpt"]["finetuned"]["perplexity"]
    assert json.loads((path / "metrics/rating.json").read_text()) == {"status": "not rated"}
    # The tiny profile configures no judge (judge.backend: none): nothing is scored, nothing invented.
    for name in ("judge", "judge_compare"):
        assert json.loads((path / f"metrics/{name}.json").read_text()) == {"status": "not judged"}
    report = sh(path, "hiwar", "report")
    assert "report.md written" in report.stdout and (path / "reports/perplexity_per_turn.png").exists()
    assert "| tiny_aragpt2 | finetuned | lora |" in (path / "reports/report.md").read_text()
    assert "Dataset: not judged" in (path / "reports/report.md").read_text()
    assert "## Top-up rounds" in (path / "reports/report.md").read_text()


def test_second_repro_runs_nothing(repo):
    path, _ = repo
    again = sh(path, "dvc", "repro")
    assert ran(again.stdout) == []
    assert "Data and pipelines are up to date" in sh(path, "dvc", "status").stdout


def test_rerunning_every_stage_with_identical_results_changes_no_metric(repo):
    path, _ = repo
    lock = (path / "dvc.lock").read_text()
    again = sh(path, "dvc", "repro", "--force")
    assert ran(again.stdout) == STAGES
    # Timings, cache hits and requests sent live in logs/runs/, not in the tracked metrics.
    assert json.loads(sh(path, "dvc", "metrics", "diff", "--json").stdout) == {}
    assert (path / "dvc.lock").read_text() == lock
    assert json.loads((path / "logs/runs/generate.json").read_text())["cache_hits"] == 120


def test_a_params_typo_stops_run_pipeline_before_any_output_is_touched(repo):
    path, _ = repo
    before = digests(path)
    good = (path / "params.yaml").read_text(encoding="utf-8")
    (path / "params.yaml").write_text(good.replace("  min_exchanges:", "  min_exchange:"), encoding="utf-8")
    try:
        # HIWAR_VENV: reuse the test's environment instead of building a .venv in the scratch copy.
        proc = sh(path, "./run", "pipeline", check=False, env={"HIWAR_VENV": sys.prefix})
    finally:
        (path / "params.yaml").write_text(good, encoding="utf-8")
    assert proc.returncode == 2
    assert "clean.min_exchange: unknown key" in proc.stderr and "Running stage" not in proc.stdout
    assert digests(path) == before


def test_exp_run_from_a_shell_without_the_environment_finds_the_projects_venv(repo, tmp_path):
    path, _ = repo
    (path / ".venv").symlink_to(sys.prefix)  # the project's own .venv, as `./run setup` makes it
    try:
        bare = {"PATH": "/usr/bin:/bin"}  # nothing activated: `python` is the system's, without pandas
        exp = sh(path, str(Path(sys.prefix) / "bin/dvc"), "exp", "run", "-S",
                 "finetune.models.tiny_aragpt2.learning_rate=0.002", env=bare)
        # judge-compare follows evaluate when the replies changed (with 4-token replies they may not)
        assert [s for s in ran(exp.stdout) if s != "judge-compare"] == ["finetune@tiny_aragpt2", "evaluate"]
        sh(path, "git", "checkout", "--", ".")
        sh(path, "dvc", "checkout")
    finally:
        (path / ".venv").unlink()
    # Without any environment, a stage stops at once with one line saying what to do.
    (tmp_path / "run").write_bytes((path / "run").read_bytes())
    (tmp_path / "run").chmod(0o755)
    proc = sh(tmp_path, "./run", "stage", "python", "-c", "print('ran')", check=False, env=bare)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: no Python environment with hiwar's packages (run ./run setup once, or activate yours)"]


def test_push_to_s3_then_a_fresh_clone_pulls_and_reruns_nothing(repo, s3_server, tmp_path):
    path, _ = repo
    url, env = s3_server
    sh(path, "dvc", "remote", "add", "-d", "store", "s3://hiwar-test/main")
    sh(path, "dvc", "remote", "modify", "store", "endpointurl", url)
    sh(path, "git", "commit", "-qam", "remote storage")  # .dvc/config: URLs only, no credentials
    assert "testing" not in (path / ".dvc/config").read_text()
    sh(path, "dvc", "push", env=env)

    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(path), str(clone))
    pulled = sh(clone, "hiwar", "pull", env=env)
    assert "error" not in pulled.stderr.lower()
    assert ran(sh(clone, "dvc", "repro", env=env).stdout) == []
    assert digests(clone) == digests(path) and len(digests(clone)) > 20

    only = tmp_path / "only-clean"
    sh(tmp_path, "git", "clone", "-q", str(path), str(only))
    sh(only, "dvc", "pull", "clean", env=env)  # just the cleaned dataset, not the models
    assert (only / "data/clean/conversations.parquet").is_file() and not (only / "models/base").exists()


def test_remote_faults_are_explained_in_one_line(repo, s3_server, tmp_path):
    path, _ = repo
    url, env = s3_server
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(path), str(clone))

    sh(clone, "dvc", "remote", "modify", "--local", "store", "endpointurl", "http://127.0.0.1:9")
    down = sh(clone, "hiwar", "pull", env=env, check=False)
    assert down.returncode == 2 and "the remote cannot be reached" in down.stderr
    sh(clone, "dvc", "remote", "modify", "--local", "store", "endpointurl", url)

    nobody = {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
              "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1"}
    anonymous = sh(clone, "hiwar", "pull", env=nobody, drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                   check=False)
    assert anonymous.returncode == 2 and "credentials" in anonymous.stderr and ".dvc/config.local" in anonymous.stderr

    sh(clone, "dvc", "remote", "modify", "--local", "store", "url", "s3://hiwar-test/never-pushed")
    missing = sh(clone, "hiwar", "pull", "data/clean/conversations.parquet", env=env, check=False)
    assert missing.returncode == 2
    assert "never pushed to the remote: data/clean/conversations.parquet (rebuild it with `dvc repro clean`)" \
        in missing.stderr


def test_publish_tags_a_release_that_another_project_imports(repo, s3_server, tmp_path):
    path, _ = repo
    _, env = s3_server
    published = sh(path, "hiwar", "publish", "v0.1", env=env)
    assert "v0.1" in sh(path, "git", "tag", "--list").stdout, published.stdout
    card = (path / "releases/v0.1.md").read_text()
    lock = yaml.safe_load((path / "dvc.lock").read_text())
    train_md5 = next(o["md5"] for o in lock["stages"]["split"]["outs"] if o["path"] == "data/split/train.parquet")
    assert "| conversations-train | dataset | `data/split/train.parquet` | `" + train_md5 in card
    assert "dvc import" in card and "--rev v0.1" in card
    assert "| conversations-croissant | dataset | `data/split/croissant.json` |" in card
    croissant = json.loads((path / "data/split/croissant.json").read_text())
    assert next(d["md5"] for d in croissant["distribution"] if d["name"] == "train.parquet") == train_md5
    split = json.loads((path / "metrics/split.json").read_text())["conversations"]
    assert f"- conversations per split: {split['train']} train / {split['validation']} validation" in card
    assert "cache/generate.dvc" in sh(path, "git", "ls-files").stdout  # the generation cache is published too
    refused = sh(path, "hiwar", "publish", "v0.1", env=env, check=False)
    assert refused.returncode == 2 and "tag v0.1 already exists" in refused.stderr

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    sh(consumer, "git", "init", "-q")
    sh(consumer, "dvc", "init", "-q")
    sh(consumer, "dvc", "import", str(path), "data/split/train.parquet", "--rev", "v0.1", env=env)
    assert hashlib.md5((consumer / "train.parquet").read_bytes()).hexdigest() == train_md5
    assert "rev: v0.1" in (consumer / "train.parquet.dvc").read_text()
    sh(consumer, "dvc", "get", str(path), "data/split", "--rev", "v0.1", "-o", "splits", env=env)
    assert {p.name for p in (consumer / "splits").iterdir()} >= {"train.parquet", "test.parquet", "README.md",
                                                                  "croissant.json"}


def test_exp_run_with_a_finetune_param_reruns_only_finetune_and_evaluate(repo):
    path, _ = repo
    exp = sh(path, "dvc", "exp", "run", "-S", "finetune.models.tiny_arabiangpt.learning_rate=0.005")
    # judge-compare follows evaluate when the replies changed; nothing before fine-tuning runs
    assert [s for s in ran(exp.stdout) if s != "judge-compare"] == ["finetune@tiny_arabiangpt", "evaluate"]

    table = list(csv.DictReader(io.StringIO(sh(path, "dvc", "exp", "show", "--csv").stdout)))
    assert len(table) >= 2  # the committed baseline and the experiment
    column = "models.tiny_arabiangpt.finetuned.perplexity"
    assert column in table[0] and len({row[column] for row in table}) == 2

    diff = sh(path, "dvc", "metrics", "diff", "--json").stdout
    changed = json.loads(diff)
    assert any(k.startswith("models.tiny_arabiangpt.finetuned") for k in changed["metrics/evaluate.json"])
    assert "metrics/generate.json" not in changed


def test_exp_run_with_a_stricter_near_dup_threshold_moves_the_quality_metrics(repo):
    path, _ = repo
    sh(path, "git", "checkout", "--", ".")  # undo the experiment applied by the test above
    sh(path, "dvc", "checkout")
    before = json.loads(sh(path, "git", "show", "HEAD:metrics/quality.json").stdout)
    kept_before = json.loads(sh(path, "git", "show", "HEAD:metrics/clean.json").stdout)["kept"]
    # Unrelated Arabic conversations share common character 5-grams: MinHash similarity 0.05 at the median
    # among the bundled ones, 0.10 at the 99th percentile. At 0.17 (counted from an estimate of 0.10, two
    # standard errors below) a few dozen of the most similar pairs count, so some conversations go.
    exp = sh(path, "dvc", "exp", "run", "-n", "near-dup-strict", "-S", "clean.near_dup_threshold=0.17")
    assert {"clean", "topup", "split", "quality"} <= set(ran(exp.stdout))
    after = json.loads((path / "metrics/quality.json").read_text())
    clean = json.loads((path / "metrics/clean.json").read_text())
    assert clean["reasons"].get("near_duplicate", 0) > 0
    dropped = kept_before - clean["kept"]
    # quality counts clean's kept rows and top-up's (which asked again for the cells that lost theirs)
    topup = json.loads((path / "metrics/topup.json").read_text())
    assert dropped > 0 and after["conversations"] == clean["kept"] + topup["kept"]
    # Fewer near-duplicates: more distinct word n-grams per word, no more shared openings, same requested cells.
    for n in (1, 2, 3):
        assert after["diversity"][f"distinct_{n}"] > before["diversity"][f"distinct_{n}"]
    assert after["diversity"]["shared_opening_share"] <= before["diversity"]["shared_opening_share"]
    assert after["coverage"]["cells_requested"] == before["coverage"]["cells_requested"]
    assert after["coverage"]["before_topup"]["cells_kept"] <= before["coverage"]["before_topup"]["cells_kept"]
    changed = json.loads(sh(path, "dvc", "metrics", "diff", "--json").stdout)
    assert "diversity.distinct_2" in changed["metrics/quality.json"]

    diff = sh(path, "hiwar", "diff", "HEAD", "near-dup-strict").stdout
    removed = diff.split("## Removed in data/clean")[1].split("\n## ")[0]
    rows = [line for line in removed.splitlines() if line.startswith("| ") and "near_duplicate" in line]
    assert len(rows) == dropped and "## Added in data/clean" not in diff
    assert "| diversity.distinct_2 |" in diff


def test_queued_experiments_run_in_temporary_workspaces_and_hiwar_compare_shows_both(repo):
    path, _ = repo
    sh(path, "git", "checkout", "--", ".")  # the experiment above was applied to the workspace
    # Its top-up asked new requests: their cache segment is not in cache/generate.dvc (the earlier `hiwar cache
    # push`), and DVC only removes an unsaved file when forced.
    sh(path, "dvc", "checkout", "--force")
    for name, rate in (("lr-high", "0.004"), ("lr-low", "0.0002")):
        sh(path, "dvc", "exp", "run", "--queue", "-n", name, "-S", f"finetune.models.tiny_arabiangpt.learning_rate={rate}")
    sh(path, "dvc", "queue", "start", "-j", "1")
    try:
        deadline = time.time() + 900
        while time.time() < deadline:
            status = sh(path, "dvc", "queue", "status").stdout
            if sum(("Success" in line or "Failed" in line) for line in status.splitlines()) >= 2:
                break
            time.sleep(3)
    finally:
        sh(path, "dvc", "queue", "stop", check=False)
    assert "Failed" not in status, sh(path, "dvc", "queue", "logs", "lr-low", check=False).stdout[-3000:]

    show = json.loads(sh(path, "dvc", "exp", "show", "--json").stdout)
    runs = {e["name"]: e["data"]["metrics"]["metrics/evaluate.json"]["data"]["models"]["tiny_arabiangpt"]["finetuned"]
            for commit in show for group in (commit.get("experiments") or []) for e in group["revs"]}
    assert {"lr-high", "lr-low"} <= set(runs) and runs["lr-high"]["perplexity"] != runs["lr-low"]["perplexity"]
    compared = sh(path, "hiwar", "compare", "--out", "reports/compare").stdout
    assert "lr-high (on" in compared and "lr-low (on" in compared
    assert (path / "reports/compare/compare.md").is_file() and list((path / "reports/compare").glob("*.png"))
