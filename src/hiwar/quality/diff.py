"""`hiwar diff A B`: what changed between two versions of the dataset (git commits, tags or experiment
names). Conversations added, removed or changed in data/clean and in each split, the reason for each removal
(from B's data/clean/rejected.parquet), and the quality metrics side by side. DVC-tracked files are read at
each revision with dvc.api (from the local cache or the remote); git-tracked metrics with `git show`."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pandas as pd

from hiwar.errors import HiwarError
from hiwar.paths import relative_paths

SPLITS = ("train", "validation", "test")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def resolve(repo: Path, name: str) -> str:
    """The commit of a git revision (commit, tag, branch) or of a DVC experiment's name."""
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    if found.returncode == 0:
        return found.stdout.strip()
    refs = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout.split("\n")
    matches = [line.split()[1] for line in refs if line and line.split()[0].rsplit("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    raise HiwarError(f"{name}: not a git revision or an experiment name in {repo}"
                     + (f" ({len(matches)} experiments have this name)" if matches else ""))


def read_parquet_at(repo: Path, path: str, rev: str) -> pd.DataFrame | None:
    """A DVC-tracked Parquet file as it was at `rev` (None when that revision has no such file)."""
    import dvc.api
    from dvc.exceptions import PathMissingError

    try:
        data = dvc.api.read(path, repo=str(repo), rev=rev, mode="rb")
    except (PathMissingError, FileNotFoundError):
        return None
    return pd.read_parquet(io.BytesIO(data))


def read_json_at(repo: Path, path: str, rev: str) -> dict | None:
    shown = _git(repo, "show", f"{rev}:{path}")
    if shown.returncode:
        return None
    try:
        return json.loads(shown.stdout)
    except json.JSONDecodeError:
        raise HiwarError(f"{path} at {rev}: not valid JSON") from None


def _by_id(frame: pd.DataFrame | None) -> dict[str, dict]:
    if frame is None:
        return {}
    return {row["conversation_id"]: row for row in frame.to_dict("records")}


def _same(a: dict, b: dict) -> bool:
    return json.dumps(list(a["messages"]), ensure_ascii=False, default=str) == \
        json.dumps(list(b["messages"]), ensure_ascii=False, default=str)


def compare(old: pd.DataFrame | None, new: pd.DataFrame | None) -> dict[str, list[str]]:
    """conversation_ids added, removed and changed (same id, different messages), each list sorted."""
    a, b = _by_id(old), _by_id(new)
    return {"added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)),
            "changed": sorted(i for i in set(a) & set(b) if not _same(a[i], b[i]))}


def removal_reasons(removed: list[str], rejected: pd.DataFrame | None) -> dict[str, str]:
    """Why each removed conversation is not kept in B: its reason codes there, or `not generated` when
    B's grid never asked for it."""
    reasons = {} if rejected is None else {r["conversation_id"]: ", ".join(map(str, r["reasons"]))
                                            for r in rejected.to_dict("records")}
    return {i: reasons.get(i, "not generated") for i in removed}


def flatten(data, prefix: str = "") -> dict:
    if not isinstance(data, dict):
        return {prefix: data}
    out = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def diff(repo: Path, a: str, b: str) -> dict:
    """Everything `hiwar diff` reports, as plain data."""
    revs = {"a": resolve(repo, a), "b": resolve(repo, b)}
    paths = relative_paths(repo)  # as this checkout's dvc.yaml names them
    clean = {k: read_parquet_at(repo, paths["clean"], rev) for k, rev in revs.items()}
    if clean["a"] is None and clean["b"] is None:
        raise HiwarError(f"{paths['clean']}: not found at {a} nor at {b} (has the clean stage run and been committed?)")
    out = {"a": a, "b": b, "revs": revs, "paths": paths, "clean": compare(clean["a"], clean["b"])}
    out["reasons"] = removal_reasons(out["clean"]["removed"], read_parquet_at(repo, paths["rejected"], revs["b"]))
    out["splits"] = {name: compare(read_parquet_at(repo, f"{paths['split']}/{name}.parquet", revs["a"]),
                                   read_parquet_at(repo, f"{paths['split']}/{name}.parquet", revs["b"]))
                     for name in SPLITS}
    out["rows"] = {**_by_id(clean["a"]), **_by_id(clean["b"])}
    out["metrics"] = {k: flatten(read_json_at(repo, f"{paths['metrics']}/quality.json", rev) or {})
                      for k, rev in revs.items()}
    return out


def _opening(row: dict | None) -> str:
    if not row:
        return ""
    text = next((m["content"] for m in row["messages"] if m["role"] == "user"), "")
    text = " ".join(str(text).split()).replace("|", "\\|")
    return f'<span dir="rtl">{text[:80]}{"…" if len(text) > 80 else ""}</span>'


def markdown(result: dict) -> str:
    a, b, rows = result["a"], result["b"], result["rows"]
    clean = result["clean"]
    lines = [f"# Dataset diff: {a} -> {b}", "",
             f"`{a}` = {result['revs']['a'][:10]}, `{b}` = {result['revs']['b'][:10]}.", "",
             "| file | added | removed | changed |", "| --- | --- | --- | --- |",
             f"| {result['paths']['clean']} | {len(clean['added'])} | {len(clean['removed'])} | {len(clean['changed'])} |"]
    for name, parts in result["splits"].items():
        lines.append(f"| {result['paths']['split']}/{name} | {len(parts['added'])} | {len(parts['removed'])} | {len(parts['changed'])} |")
    for kind in ("added", "removed", "changed"):
        ids = clean[kind]
        if not ids:
            continue
        lines += ["", f"## {kind.capitalize()} in {result['paths']['clean']} ({len(ids)})", ""]
        reason = kind == "removed"
        lines += [f"| conversation | topic | country |{' reason in ' + b + ' |' if reason else ''} opening user turn |",
                  f"| --- | --- | --- |{' --- |' if reason else ''} --- |"]
        for i in ids:
            row = rows.get(i, {})
            why = f" {result['reasons'][i]} |" if reason else ""
            lines.append(f"| {i} | {row.get('topic', '')} | {row.get('country', '')} |{why} {_opening(row)} |")
    keys = sorted(set(result["metrics"]["a"]) | set(result["metrics"]["b"]))
    if keys:
        lines += ["", "## Quality metrics", "", f"| metric | {a} | {b} | change |", "| --- | --- | --- | --- |"]
        for key in keys:
            old, new = result["metrics"]["a"].get(key), result["metrics"]["b"].get(key)
            change = f"{new - old:+.4g}" if isinstance(old, (int, float)) and isinstance(new, (int, float)) else ""
            lines.append(f"| {key} | {'-' if old is None else old} | {'-' if new is None else new} | {change} |")
    return "\n".join(lines) + "\n"
