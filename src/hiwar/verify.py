"""`hiwar verify`: rebuild a committed revision from scratch and hold its outputs against its `dvc.lock`.

This is what a reviewer of a result built with hiwar runs. The revision is cloned into a scratch folder
with no DVC cache, no run-cache and no generation cache, so every stage computes its outputs again; then
each stage of the new `dvc.lock` is compared with the committed one, in pipeline order:

- identical: every output has the committed hash;
- input differed: a dependency or a param had another hash or value than the lock records (an upstream
  stage's outputs, or a file the lock does not match), so different outputs are expected;
- other outputs from the same inputs: the stage itself is not reproducible on this machine.

Metrics are compared number by number. `--tolerant` accepts hash differences when every metric of every
rebuilt stage lies within the tolerance stated for it in configs/verify.yaml; nothing is hidden behind
it, since every difference is still printed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hiwar.errors import HiwarError
from hiwar.paths import relative_paths

TOLERANCES = Path("configs/verify.yaml")


@dataclass
class StageVerdict:
    stage: str
    status: str  # identical | input differed | other outputs | not in the committed lock
    differing: list[str] = field(default_factory=list)  # the inputs or outputs that differ


@dataclass
class MetricDelta:
    key: str  # file:dotted.key
    committed: float | None
    rebuilt: float | None
    tolerance: float | None  # None: no tolerance stated, so only equality passes

    @property
    def within(self) -> bool:
        if self.committed is None or self.rebuilt is None:
            return False
        return abs(self.rebuilt - self.committed) <= (self.tolerance or 0.0)


# --- comparing two locks ------------------------------------------------------------------------------------


def _hashes(entries: list[dict] | None) -> dict[str, str]:
    return {entry["path"]: entry.get("md5") or entry.get("hash") or "" for entry in entries or []}


def _params(stage: dict) -> dict[str, object]:
    return {f"{file}:{key}": value for file, values in (stage.get("params") or {}).items()
            for key, value in values.items()}


def compare_locks(committed: dict, rebuilt: dict) -> list[StageVerdict]:
    """One verdict per stage of the rebuilt lock, in its order (DVC writes stages in pipeline order)."""
    old_stages = committed.get("stages", {})
    verdicts = []
    for name, new in rebuilt.get("stages", {}).items():
        old = old_stages.get(name)
        if old is None:
            verdicts.append(StageVerdict(name, "not in the committed lock"))
            continue
        old_outs, new_outs = _hashes(old.get("outs")), _hashes(new.get("outs"))
        outs = sorted(p for p in old_outs.keys() | new_outs.keys() if old_outs.get(p) != new_outs.get(p))
        if not outs:
            verdicts.append(StageVerdict(name, "identical"))
            continue
        old_in = _hashes(old.get("deps")) | _params(old)
        new_in = _hashes(new.get("deps")) | _params(new)
        inputs = sorted(k for k in old_in.keys() | new_in.keys() if old_in.get(k) != new_in.get(k))
        verdicts.append(StageVerdict(name, "input differed", inputs) if inputs else StageVerdict(name, "other outputs", outs))
    return verdicts


# --- comparing metrics ---------------------------------------------------------------------------------------


def numbers(value, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a JSON value, by dotted key (booleans are not numbers here)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in numbers(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{prefix}{i}.").items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix.rstrip("."): float(value)}
    return {}


def load_tolerances(path: Path) -> list[tuple[str, float]]:
    """(pattern, absolute tolerance) pairs, first match wins; a pattern is `file:dotted.key` with * wildcards."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tolerances = data.get("tolerances") if isinstance(data, dict) else None
    if not isinstance(tolerances, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in tolerances.values()):
        raise HiwarError(f"{path}: tolerances: expected a mapping of `file:key` patterns to non-negative numbers")
    return [(str(pattern), float(value)) for pattern, value in tolerances.items()]


def tolerance_for(key: str, tolerances: list[tuple[str, float]]) -> float | None:
    return next((value for pattern, value in tolerances if fnmatch.fnmatchcase(key, pattern)), None)


def compare_metrics(files: dict[str, tuple[dict | None, dict | None]], tolerances) -> list[MetricDelta]:
    """Every numeric metric that differs between the committed and the rebuilt files."""
    deltas = []
    for path, (committed, rebuilt) in sorted(files.items()):
        old, new = numbers(committed or {}), numbers(rebuilt or {})
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                name = f"{path}:{key}"
                deltas.append(MetricDelta(name, old.get(key), new.get(key), tolerance_for(name, tolerances)))
    return deltas


# --- the rebuild ---------------------------------------------------------------------------------------------


def _git(*args, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise HiwarError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def scratch_clone(project: Path, rev: str, dest: Path) -> None:
    """The committed revision alone: no DVC cache, no outputs, no generation cache, no uncommitted edits."""
    _git("clone", "--quiet", "--no-hardlinks", str(project), str(dest), cwd=project)
    _git("checkout", "--quiet", "--detach", _git("rev-parse", rev, cwd=project).strip(), cwd=dest)


def rebuild(workdir: Path, stages: list[str]) -> None:
    """`dvc repro` of the named stages and everything upstream of them (or of the whole pipeline)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)  # the scratch's own src/ comes first through `./run stage`
    # --force: metrics kept in git exist in the clone and would otherwise count as already built.
    command = ["dvc", "repro", "--force", "--no-run-cache", *stages]
    done = subprocess.run(command, cwd=workdir, env=env)
    if done.returncode:
        raise HiwarError(f"`{' '.join(command)}` failed in {workdir} (exit {done.returncode}); its output is above")


def metric_files(lock: dict, paths: dict[str, str]) -> list[str]:
    """The JSON outputs of a lock's stages kept in git under the folders dvc.yaml names `metrics` and `live`
    (metrics, DVCLive summaries)."""
    folders = tuple(paths[name].rstrip("/") + "/" for name in ("metrics", "live"))
    return sorted(entry["path"] for stage in lock.get("stages", {}).values()
                  for entry in stage.get("outs", []) if entry["path"].endswith(".json")
                  and entry["path"].startswith(folders))


def read_json_at(project: Path, rev: str, path: str) -> dict | None:
    done = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=project, capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else None


@dataclass
class Report:
    verdicts: list[StageVerdict]
    deltas: list[MetricDelta]

    @property
    def identical(self) -> bool:
        return all(v.status == "identical" for v in self.verdicts)

    @property
    def within_tolerance(self) -> bool:
        return all(d.within for d in self.deltas)

    def lines(self) -> list[str]:
        out = []
        first = next((v for v in self.verdicts if v.status != "identical"), None)
        for v in self.verdicts:
            detail = f": {', '.join(v.differing)}" if v.differing else ""
            out.append(f"  {'ok ' if v.status == 'identical' else 'DIFF'} {v.stage}: {v.status}{detail}")
        if first is None:
            out.append("every rebuilt output has the committed hash")
        elif first.status == "input differed":
            out.append(f"first difference: stage {first.stage}, whose input differed from the lock: {', '.join(first.differing)}")
        elif first.status == "other outputs":
            out.append(f"first difference: stage {first.stage} gave other outputs from the same inputs "
                       f"({', '.join(first.differing)}): it is not reproducible on this machine")
        else:
            out.append(f"first difference: stage {first.stage} is not in the committed lock")
        for d in self.deltas:
            limit = "no tolerance stated" if d.tolerance is None else f"tolerance {d.tolerance:g}"
            change = "missing" if None in (d.committed, d.rebuilt) else f"{d.rebuilt - d.committed:+.6g}"
            out.append(f"  {'within' if d.within else 'OUTSIDE'} {d.key}: {d.committed} -> {d.rebuilt} ({change}; {limit})")
        return out


def verify(project: Path, stages: list[str], rev: str = "HEAD", workdir: Path | None = None) -> Report:
    committed = yaml.safe_load(_git("show", f"{rev}:dvc.lock", cwd=project))
    workdir = Path(tempfile.mkdtemp(prefix="hiwar-verify-")) if workdir is None else workdir
    scratch_clone(project, rev, workdir)
    # Without a lock in the scratch, the new one holds exactly the stages that ran.
    (workdir / "dvc.lock").unlink(missing_ok=True)
    rebuild(workdir, stages)
    rebuilt = yaml.safe_load((workdir / "dvc.lock").read_text(encoding="utf-8"))
    files = {path: (read_json_at(project, rev, path), _read(workdir / path))
             for path in metric_files(rebuilt, relative_paths(workdir))}
    tolerances = load_tolerances(workdir / TOLERANCES)
    return Report(compare_locks(committed, rebuilt), compare_metrics(files, tolerances))


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
