"""`hiwar diff A B` between two commits of a scratch git + DVC repository with planted changes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hiwar.cli import main

pytestmark = pytest.mark.slow  # a few dvc commands, ~20 s


def sh(cwd, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@t.invalid", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t.invalid")
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)


def conv(i, topic, user, answer="أهلًا بك، يسعدني أن أساعدك في ذلك."):
    return {"conversation_id": f"c{i}", "topic": topic, "country": "EG",
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def write(repo: Path, kept: list[dict], rejected: list[dict], splits: dict[str, list[str]], distinct_2: float):
    (repo / "data/clean").mkdir(parents=True, exist_ok=True)
    (repo / "data/split").mkdir(parents=True, exist_ok=True)
    (repo / "metrics").mkdir(exist_ok=True)
    frame = pd.DataFrame(kept)
    frame.to_parquet(repo / "data/clean/conversations.parquet", index=False)
    pd.DataFrame(rejected, columns=["conversation_id", "topic", "country", "messages", "reasons"]).to_parquet(
        repo / "data/clean/rejected.parquet", index=False)
    for name, ids in splits.items():
        frame[frame["conversation_id"].isin(ids)].to_parquet(repo / f"data/split/{name}.parquet", index=False)
    (repo / "metrics/quality.json").write_text(json.dumps({"diversity": {"distinct_2": distinct_2}}))
    sh(repo, "dvc", "add", "-q", "data/clean/conversations.parquet", "data/clean/rejected.parquet",
       *(f"data/split/{n}.parquet" for n in splits))
    sh(repo, "git", "add", "-A")


def test_diff_between_two_commits_lists_exactly_the_planted_changes(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    a = [conv(1, "travel", "أين أقضي عطلة قصيرة في مصر؟"), conv(2, "cooking", "كيف أطبخ الملوخية؟"),
         conv(3, "sleep", "لماذا أستيقظ متعبًا كل صباح؟"), conv(4, "fitness", "ما أفضل تمرين للمبتدئين؟")]
    write(repo, a, [], {"train": ["c1", "c2"], "validation": ["c3"], "test": ["c4"]}, 0.61)
    sh(repo, "git", "commit", "-qm", "version a")

    b = [a[0], conv(2, "cooking", "كيف أطبخ الملوخية بالأرانب؟"), a[3], conv(5, "football", "من فاز بكأس أفريقيا؟")]
    rejected = [{**a[2], "reasons": ["near_duplicate"]}]
    write(repo, b, rejected, {"train": ["c1", "c2", "c5"], "validation": [], "test": ["c4"]}, 0.58)
    sh(repo, "git", "commit", "-qm", "version b")
    sh(repo, "git", "tag", "v-b")
    sh(repo, "git", "update-ref", "refs/exps/ab/cdef/my-exp", "HEAD")

    monkeypatch.chdir(repo)
    out = CliRunner().invoke(main, ["diff", "HEAD~1", "my-exp", "--out", "diff.md"])
    assert out.exit_code == 0, out.output
    text = (repo / "diff.md").read_text(encoding="utf-8")
    assert "| data/clean/conversations.parquet | 1 | 1 | 1 |" in text
    assert "| data/split/train | 1 | 0 | 1 |" in text and "| data/split/validation | 0 | 1 | 0 |" in text
    assert "| data/split/test | 0 | 0 | 0 |" in text
    added = text.split("## Added")[1].split("##")[0]
    removed = text.split("## Removed")[1].split("##")[0]
    changed = text.split("## Changed")[1].split("##")[0]
    assert "| c5 | football |" in added and "c1 " not in added
    assert "| c3 | sleep | EG | near_duplicate |" in removed
    assert "| c2 | cooking |" in changed and "c4" not in changed and "c1 " not in changed
    assert '<span dir="rtl">كيف أطبخ الملوخية بالأرانب؟</span>' in changed
    assert "| diversity.distinct_2 | 0.61 | 0.58 | -0.03 |" in text

    same = CliRunner().invoke(main, ["diff", "v-b", "HEAD"])
    assert same.exit_code == 0 and "| data/clean/conversations.parquet | 0 | 0 | 0 |" in same.output
    bad = CliRunner().invoke(main, ["diff", "HEAD", "no-such-exp"])
    assert bad.exit_code == 2 and "no-such-exp: not a git revision or an experiment name" in bad.output
