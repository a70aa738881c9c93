"""Which rows a comparison shows: `dvc exp show --json` turned into one Row per workspace, commit and
experiment, then the rows people mean (the workspace, HEAD and HEAD's experiments, plus what was named),
cut to a row limit that says what it left out."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field

from hiwar.errors import HiwarError


@dataclass
class Row:
    name: str  # experiment name, branch name or short commit hash
    rev: str  # full commit hash, or "workspace"
    kind: str  # "workspace", "commit" or "experiment"
    baseline: str | None = None  # for an experiment: the name of the commit it was run on
    params: dict = field(default_factory=dict)  # flat "section.key" (other params files: "file:key") -> value
    metrics: dict = field(default_factory=dict)  # flat "file:key" -> value

    @property
    def label(self) -> str:
        return f"{self.name} (on {self.baseline})" if self.kind == "experiment" else self.name


def flatten(data, prefix: str = "") -> dict:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _row(entry: dict, kind: str, name: str, baseline: str | None = None) -> Row:
    data = entry.get("data") or {}
    row = Row(name=name, rev=str(entry["rev"]), kind=kind, baseline=baseline)
    for file, content in (data.get("params") or {}).items():
        prefix = "" if file == "params.yaml" else f"{file}:"
        row.params.update({prefix + k: v for k, v in flatten((content or {}).get("data") or {}).items()})
    for file, content in (data.get("metrics") or {}).items():
        row.metrics.update({f"{file}:{k}": v for k, v in flatten((content or {}).get("data") or {}).items()})
    return row


def parse_exp_show(exp_show: list[dict]) -> tuple[list[Row], list[str]]:
    """(rows in DVC's order: workspace, then each commit followed by its experiments; lines naming the
    experiments skipped because they failed or have not run yet)."""
    rows, skipped = [], []
    for commit in exp_show:
        if commit.get("rev") == "workspace":
            if commit.get("data"):
                rows.append(_row(commit, "workspace", "workspace"))
            continue
        name = commit.get("name") or str(commit["rev"])[:7]
        rows.append(_row(commit, "commit", name))
        for group in commit.get("experiments") or []:
            for entry in group.get("revs") or []:
                exp_name = entry.get("name") or group.get("name") or str(entry["rev"])[:7]
                if entry.get("error") or not entry.get("data"):
                    state = (entry.get("error") or {}).get("msg") or (group.get("executor") or {}).get("state")
                    skipped.append(f"{exp_name} (on {name}): {state or 'no results yet'}")
                    continue
                rows.append(_row(entry, "experiment", exp_name, baseline=name))
    return rows, skipped


def select_rows(rows: list[Row], head: str | None, wanted: list[str], everything: bool,
                limit: int) -> tuple[list[Row], list[str]]:
    """(rows to show, notes on what was left out). Default: the workspace when it differs from HEAD, HEAD,
    HEAD's experiments and every row named in `wanted` (experiment or branch name, or a commit hash or its
    prefix); `everything`: all rows. The limit keeps named rows, the workspace and HEAD first."""
    notes = []
    head_row = next((r for r in rows if r.kind == "commit" and head and r.rev == head), None)
    if head_row is None:
        head_row = next((r for r in rows if r.kind == "commit"), None)

    def named(row: Row) -> bool:
        return any(w in (row.name, row.label) or (len(w) >= 4 and row.rev.startswith(w)) for w in wanted)

    unmatched = [w for w in wanted if not any(w in (r.name, r.label) or (len(w) >= 4 and r.rev.startswith(w))
                                              for r in rows)]
    if unmatched:
        raise HiwarError(f"no experiment, branch or commit called {', '.join(unmatched)} "
                         "(`dvc exp list -A` lists the experiments, `git log` the commits)")
    bases = {r.baseline for r in rows if r.kind == "experiment" and named(r)}  # shown for context
    chosen = []
    for row in rows:
        if row.kind == "workspace" and head_row and (row.params, row.metrics) == (head_row.params, head_row.metrics):
            notes.append(f"workspace: same params and metrics as {head_row.name}, not shown")
            continue
        if (everything or named(row) or row.kind == "workspace" or row is head_row
                or (row.kind == "commit" and row.name in bases)
                or (row.kind == "experiment" and head_row and row.baseline == head_row.name)):
            chosen.append(row)
    if not chosen:
        raise HiwarError("dvc exp show: no commits or experiments to compare (commit, or `dvc exp run`, first)")
    if len(chosen) > limit:
        first = [r for r in chosen if named(r) or r.kind == "workspace" or r is head_row]
        rest = [r for r in chosen if r not in first]
        keep = set(map(id, (first + rest)[:max(limit, 1)]))
        dropped = [r for r in chosen if id(r) not in keep]
        chosen = [r for r in chosen if id(r) in keep]
        shown = ", ".join(r.label for r in dropped[:6]) + (", ..." if len(dropped) > 6 else "")
        notes.append(f"{len(dropped)} more rows left out by the row limit ({shown}); "
                     f"--max-rows {len(chosen) + len(dropped)} shows them, or name the ones you want")
    return chosen, notes


def experiment_refs() -> dict[str, str]:
    """Every experiment in the repository, name -> full hash of its baseline commit, read from git's
    refs/exps (cheap: no `dvc exp show -A`). Empty outside a git repository."""
    done = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
                          capture_output=True, text=True)
    out = {}
    for ref in done.stdout.split():
        parts = ref.split("/")  # refs/exps/ab/cdef.../name
        if len(parts) == 5 and parts[2] != "exec":
            out[parts[4]] = parts[2] + parts[3]
    return out


def git_commit(rev: str) -> str | None:
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def resolve_names(names: list[str]) -> list[str]:
    """Experiment names stay; anything git resolves (branch, tag, HEAD~1, short hash) becomes its full
    hash, which is how the rows of `dvc exp show` can be matched; the rest is left for the error message."""
    refs = experiment_refs()
    return [name if name in refs else (git_commit(name) or name) for name in names]


def dvc_exp_show(wanted: list[str], all_commits: bool, all_experiments: bool) -> list[dict]:
    """`dvc exp show --json` for HEAD plus the commits that `wanted` names or that hold the named
    experiments (or every commit with experiments, or every commit)."""
    from hiwar.remote import run

    if all_commits:
        return json.loads(run(["dvc", "exp", "show", "--json", "-A"]))
    refs = experiment_refs()
    bases = ["HEAD"]
    for name in wanted:
        base = refs.get(name) or git_commit(name)
        if base is None:
            raise HiwarError(f"no experiment, branch or commit called {name} "
                             "(`dvc exp list -A` lists the experiments, `git log` the commits)")
        bases.append(base)
    if all_experiments:
        bases += sorted(set(refs.values()))
    args = [a for b in dict.fromkeys(bases) for a in ("--rev", b)]
    return json.loads(run(["dvc", "exp", "show", "--json", *args]))


def other_experiments(rows: list[Row]) -> list[str]:
    """Experiments in the repository whose baseline is not among the rows (a hint for the user)."""
    seen = {r.name for r in rows if r.kind == "experiment"}
    return sorted(name for name in experiment_refs() if name not in seen)


def read_at_rev(rev: str, path: str) -> str | None:
    """A git-tracked file (metrics are `cache: false`) as of `rev`; the workspace reads the disk."""
    if rev == "workspace":
        return open(path, encoding="utf-8").read() if os.path.exists(path) else None
    done = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def add_intervals(rows: list[Row], read=read_at_rev) -> None:
    """`dvc exp show` drops list values, so the `<key>_ci95` intervals are read from each row's metrics
    files themselves and added beside their values."""
    for row in rows:
        for file in dict.fromkeys(k.partition(":")[0] for k in row.metrics):
            text = read(row.rev, file) if file.endswith(".json") else None
            try:
                data = json.loads(text) if text else {}
            except json.JSONDecodeError:
                continue
            row.metrics.update({f"{file}:{k}": v for k, v in flatten(data).items()
                                if k.endswith("_ci95") and isinstance(v, list)})
