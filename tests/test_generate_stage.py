"""The generate stage as a process, the way `dvc repro` runs it: killed half way and rerun, failing loudly,
keeping the API key out of every file, and resuming on another machine from the DVC remote."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hiwar.generation.cache import ResponseCache
from hiwar.generation.grid import build_grid
from hiwar.params.grid import GridParams
from conftest import ROOT, stage_command  # noqa: E402  (the one repository root, in conftest)

N = 60


def scratch_project(path, params_data, bundled, url, http=None, **generate):
    """A directory with what the stage reads: params.yaml, the bundled data and the grid."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "data/bundled", path / "data/bundled")
    params = json.loads(json.dumps(params_data))
    params["grid"]["conversations"] = N
    http = dict(params["generate"]["http"], endpoints=[dict(base_url=url, concurrency=2)], timeout=2.0,
                max_retries=3, backoff_initial=0.01, backoff_max=0.05, cooldown=0.05) | (http or {})
    params["generate"].update(backend="http", model="loopback", http=http, **generate)
    (path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    build_grid(GridParams.model_validate(params["grid"]), bundled).to_parquet(path / "data/grid.parquet")
    return path


def stage(project, env=None, **kwargs):
    return subprocess.Popen(stage_command("generate"), cwd=project, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                            **kwargs)


def sent_seeds(log):
    return [json.loads(line)["seed"] for line in log.read_text().splitlines()]


def kill_half_way(project):
    """Run the stage and kill -9 it once half the answers are cached; return the cached requests' seeds."""
    proc = stage(project)
    cache_dir = project / "cache/generate"
    deadline = time.time() + 60
    while time.time() < deadline and len(ResponseCache(cache_dir)) < N // 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return {int(key[:15], 16) for key in ResponseCache(cache_dir).records}


def test_a_run_killed_half_way_resumes_without_repeating_a_request(loopback, params_data, bundled, tmp_path):
    url, log, _ = loopback(latency=0.1)
    project = scratch_project(tmp_path / "killed", params_data, bundled, url)
    cached = kill_half_way(project)
    assert N // 2 <= len(cached) < N
    assert not (project / "data/raw/generations.parquet").exists()  # nothing half-written
    before = len(log.read_text().splitlines())

    rerun = stage(project)
    assert rerun.wait() == 0, rerun.stderr.read()
    resent = sent_seeds(log)[before:]
    assert not set(resent) & cached  # no request whose answer was cached went out again
    assert len(resent) == N - len(cached)

    fresh = scratch_project(tmp_path / "uninterrupted", params_data, bundled, url)
    assert stage(fresh).wait() == 0
    resumed = pd.read_parquet(project / "data/raw/generations.parquet")
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(fresh / "data/raw/generations.parquet"))
    facts = json.loads((project / "logs/runs/generate.json").read_text())
    assert facts["cache_hits"] == len(cached) and facts["sent"] == N - len(cached)
    metrics = json.loads((project / "metrics/generate.json").read_text())
    assert sum(t["requested"] for t in metrics["per_topic"].values()) == N


def test_the_api_key_reaches_no_file_the_run_writes(loopback, params_data, bundled, tmp_path):
    secret = "sk-hiwar-3c9e71d0b2"
    url, _, _ = loopback(api_key=secret, p_500=0.2)
    project = scratch_project(tmp_path / "p", params_data, bundled, url)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["generate"]["http"]["endpoints"][0]["api_key_env"] = "HIWAR_KEY"
    (project / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    proc = stage(project, env={"HIWAR_KEY": secret})
    assert proc.wait() == 0, proc.stderr.read()
    assert pd.read_parquet(project / "data/raw/generations.parquet")["finish_reason"].ne("error").all()
    written = [p for p in project.rglob("*") if p.is_file() and "seed" not in p.parts]
    assert len(written) >= 4
    assert not [p for p in written if secret.encode() in p.read_bytes()]


def test_too_many_failures_stop_the_stage_with_a_clear_message_and_no_output(loopback, params_data, bundled, tmp_path):
    url, _, _ = loopback(p_500=1.0)
    project = scratch_project(tmp_path / "p", params_data, bundled, url, http=dict(max_retries=1, eject_after=1000),
                              max_failure_rate=0.1)
    proc = stage(project)
    assert proc.wait() == 2
    err = proc.stderr.read()
    assert f"generate: {N} of {N} requests failed" in err and "generate.max_failure_rate" in err
    assert "'HTTP 500: " in err and "logs/generate-failures.jsonl" in err
    assert not (project / "data/raw/generations.parquet").exists()
    failures = (project / "logs/generate-failures.jsonl").read_text().splitlines()
    assert len(failures) == N and json.loads(failures[0])["error"].startswith("HTTP 500")


@pytest.mark.slow
def test_a_half_finished_cache_pushed_to_s3_lets_another_workspace_finish_without_repeats(
        loopback, s3_server, params_data, bundled, tmp_path):
    url, log, _ = loopback(latency=0.1)
    s3_url, s3_env = s3_server
    first = scratch_project(tmp_path / "first", params_data, bundled, url)

    def run(*args, cwd):
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **s3_env})
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    run("git", "init", "-q", cwd=first)
    (first / ".gitignore").write_text("/cache/generate/\n/data/raw/\n/logs/\n/metrics/\n")
    run("dvc", "init", "-q", cwd=first)
    run("dvc", "remote", "add", "-d", "store", "s3://hiwar-test/generation-cache", cwd=first)
    run("dvc", "remote", "modify", "store", "endpointurl", s3_url, cwd=first)
    cached = kill_half_way(first)
    assert N // 2 <= len(cached) < N
    run("hiwar", "cache", "push", cwd=first)
    run(*git, "add", "-A", cwd=first)
    run(*git, "commit", "-qm", "half a cache", cwd=first)

    second = tmp_path / "second"
    run("git", "clone", "-q", str(first), str(second), cwd=tmp_path)
    run("hiwar", "cache", "pull", cwd=second)
    assert f"{len(cached)} answers" in run("hiwar", "cache", "status", cwd=second)
    before = len(log.read_text().splitlines())
    proc = stage(second)
    assert proc.wait() == 0, proc.stderr.read()
    resent = sent_seeds(log)[before:]
    assert not set(resent) & cached and len(resent) == N - len(cached)
    assert json.loads((second / "logs/runs/generate.json").read_text())["cache_hits"] == len(cached)
