"""Remote storage and releases: `hiwar pull`, `hiwar publish`, and DVC's errors said in one line.

`publish TAG` refuses a dirty or stale workspace (a release must be exactly a commit whose outputs are what
its dvc.lock says), pushes every stage output and the generation cache to the DVC remote, writes
`releases/TAG.md` (artifacts with their hashes, headline metrics, and the `dvc import` lines that consume
them), commits it with the cache's .dvc file and tags that commit. `pull` is `dvc pull` with the usual
failures explained in one line each.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import yaml

from hiwar.errors import HiwarError
from hiwar.params import load_section


def run(args: list[str]) -> str:
    """Run a command and return its output; a failure becomes a HiwarError (DVC's explained)."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise HiwarError(explain_dvc_error(done.stdout + done.stderr, " ".join(args)) if args[0] == "dvc"
                         else f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def remote_args(remote: str | None) -> list[str]:
    return ["-r", remote] if remote else []


def explain_dvc_error(output: str, command: str) -> str:
    """One line that names the cause and the fix, for the failures people actually hit."""
    text = " ".join(output.split())
    if re.search(r"Unable to locate credentials|NoCredentialsError|InvalidAccessKeyId|SignatureDoesNotMatch|"
                 r"no credentials|AccessDenied", text, re.IGNORECASE):
        return (f"`{command}`: the remote refused the credentials, or none were found. Put them in the environment "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or in .dvc/config.local with "
                "`dvc remote modify --local <remote> access_key_id ...`; never in .dvc/config")
    if re.search(r"Could not connect|Connection refused|Cannot connect|ConnectTimeout|EndpointConnectionError|"
                 r"Name or service not known|unreachable|timed out", text, re.IGNORECASE):
        return (f"`{command}`: the remote cannot be reached (check its URL and endpointurl with `dvc remote list`, "
                "and that the server is up)")
    if "Checkout failed for following targets" in text or "do not exist neither locally nor on remote" in text:
        return f"`{command}`: {missing_outputs_message(output)}"
    if "no remote" in text.lower() or "remote is not set" in text.lower():
        return (f"`{command}`: no DVC remote is configured (see the README, 'Remote storage': "
                "`dvc remote add -d ...`)")
    last = [line for line in output.strip().splitlines() if line.strip()]
    return f"`{command}` failed: {last[-1] if last else 'no output'}"


def stage_of(path: str, dvc_yaml: Path = Path("dvc.yaml"), params: Path = Path("params.yaml")) -> str | None:
    """The stage whose outs contain `path` (foreach stages expanded over finetune.models)."""
    spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))
    models = list((yaml.safe_load(params.read_text(encoding="utf-8")) or {}).get("finetune", {}).get("models", {}))
    for name, stage in spec.get("stages", {}).items():
        if "foreach" in stage:
            for key in models:
                outs = [str(o).replace("${key}", key) for o in stage["do"].get("outs", [])]
                if any(path == o or path.startswith(o.rstrip("/") + "/") for o in outs):
                    return f"{name}@{key}"
            continue
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
        if any(path == o or path.startswith(o.rstrip("/") + "/") for o in outs):
            return name
    return None


def missing_outputs_message(output: str) -> str:
    """DVC lists the outputs it could not check out after 'Checkout failed for following targets:'."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "Checkout failed for following targets" in line), None)
    paths = []
    for line in lines[start + 1:] if start is not None else []:
        line = line.strip()
        if not line or line.startswith(("Is your cache", "<http")):
            break
        paths.append(line)
    if not paths:
        return "some outputs were never pushed to the remote (`dvc status -c` lists them; `dvc repro` rebuilds them)"
    named = []
    for path in paths[:8]:
        stage = stage_of(path)
        named.append(f"{path} (rebuild it with `dvc repro {stage}`)" if stage else path)
    more = f" and {len(paths) - 8} more" if len(paths) > 8 else ""
    return "never pushed to the remote: " + ", ".join(named) + more


def artifacts(dvc_yaml: Path = Path("dvc.yaml"), lock: Path = Path("dvc.lock")) -> list[dict]:
    """The artifacts dvc.yaml declares, each with the md5 and size dvc.lock records for its path."""
    spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))
    hashes = {}
    for stage in (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            hashes[out["path"]] = out
    rows = []
    for name, art in (spec.get("artifacts") or {}).items():
        out = hashes.get(art["path"], {})
        rows.append({"name": name, **art, "md5": out.get("md5"), "size": out.get("size")})
    return rows


def release_card(tag: str, commit: str, repo_url: str, metrics_dir: Path = Path("metrics")) -> str:
    def read(name):
        path = metrics_dir / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    generate, clean, split, evaluate = (read(n) for n in ("generate.json", "clean.json", "split.json", "evaluate.json"))
    lines = [f"# hiwar release {tag}", "", f"Commit `{commit[:12]}`, published {time.strftime('%Y-%m-%d')}.", "",
             "## Artifacts", "", "| name | type | path | md5 | size | description |", "| --- | --- | --- | --- | --- | --- |"]
    for art in artifacts():
        size = f"{art['size'] / 1e6:.1f} MB" if art.get("size") else "-"
        lines.append(f"| {art['name']} | {art.get('type', '-')} | `{art['path']}` | `{art.get('md5') or '-'}` | {size} "
                     f"| {art.get('desc', '')} |")
    lines += ["", "## Headline figures", ""]
    if generate:
        lines.append(f"- generated: {generate.get('succeeded')} of {generate.get('requested')} requests answered "
                     f"({generate.get('failed')} failed)")
    if clean:
        lines.append(f"- kept by cleaning: {clean.get('kept')} (rejected {clean.get('rejected')}; "
                     "reasons in metrics/clean.json)")
    if split:
        sizes = " / ".join(f"{n} {name}" for name, n in split.get("conversations", {}).items())
        lines.append(f"- conversations per split: {sizes}; the dataset card is data/split/README.md")
    for model, kinds in (evaluate.get("models") or {}).items():
        base, tuned = kinds.get("base", {}), kinds.get("finetuned", {})
        if base and tuned:
            lines.append(f"- {model}: perplexity {base['perplexity']:.2f} -> {tuned['perplexity']:.2f}, rescaled "
                         f"embedding score {base['embedding_score_rescaled']:.3f} -> "
                         f"{tuned['embedding_score_rescaled']:.3f}")
    lines += ["", "## Use it from another project", "", "```bash",
              f"dvc import {repo_url} data/split/train.parquet --rev {tag}    # tracked, pinned to this release",
              f"dvc get {repo_url} data/split --rev {tag}                     # a plain copy of all splits",
              "```", ""]
    return "\n".join(lines)


def publish(tag: str, remote: str | None, message: str | None) -> Path:
    if run(["git", "tag", "--list", tag]).strip():
        raise HiwarError(f"tag {tag} already exists (expected a new release name)")
    if run(["git", "status", "--porcelain", "--untracked-files=no"]).strip():
        raise HiwarError("the workspace has uncommitted changes (expected a clean commit to release: commit or "
                         "stash first)")
    stale = json.loads(run(["dvc", "status", "--json"]) or "{}")
    if stale:
        raise HiwarError(f"stages not up to date: {', '.join(sorted(stale))} (expected `dvc repro` and a commit "
                         "before publishing)")
    tracked = []
    cache = Path(load_section("generate").cache_dir)
    if cache.is_dir() and not cache.is_absolute():  # the generation cache travels with the release
        run(["dvc", "add", str(cache)])
        tracked.append(f"{cache}.dvc")
    run(["dvc", "push", *remote_args(remote)])
    commit = run(["git", "rev-parse", "HEAD"]).strip()
    url = subprocess.run(["git", "config", "--get", "remote.origin.url"], capture_output=True, text=True).stdout.strip()
    card = Path("releases") / f"{tag}.md"
    card.parent.mkdir(exist_ok=True)
    card.write_text(release_card(tag, commit, url or "<url of this git repository>"), encoding="utf-8")
    run(["git", "add", str(card), *tracked])
    run(["git", "commit", "-q", "-m", f"Release {tag}"])
    run(["git", "tag", "-a", tag, "-m", message or f"hiwar release {tag}"])
    return card
