"""Releases: `hiwar publish TAG`.

It refuses a dirty or stale workspace (a release must be exactly a commit whose outputs are what its dvc.lock
says), cards without a publication date (`card.date_published`), and a croissant.json whose file hashes are not
those of the files beside it; then pushes every stage output and the generation cache to the DVC remote, writes
`releases/TAG.md` (artifacts with their hashes, among them the dataset card and croissant.json, headline
metrics, and the lines that consume them), commits it with the cache's .dvc file and tags that commit.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import yaml

from hiwar.errors import HiwarError
from hiwar.io import read_json
from hiwar.params import load_section
from hiwar.paths import relative_paths
from hiwar.remote import remote_args, run


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


def cards(found: list[dict] | None = None) -> dict[str, str]:
    """The paths of the dataset card (README.md) and croissant.json among the artifacts, by file name."""
    found = artifacts() if found is None else found
    return {Path(a["path"]).name: a["path"] for a in found if Path(a["path"]).name in ("README.md", "croissant.json")}


def check_croissant(path: Path) -> None:
    """Every file croissant.json describes is beside it with the sha256 it records (a card that describes other
    bytes must not ship)."""
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected the card stage's croissant.json; run `dvc repro card`)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    for obj in (d for d in doc.get("distribution", []) if d.get("@type") == "cr:FileObject"):
        target = path.parent / obj["contentUrl"]
        if not target.is_file():
            raise HiwarError(f"{path}: describes {obj['contentUrl']}, which is not beside it")
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if digest != obj.get("sha256"):
            raise HiwarError(f"{path}: {obj['contentUrl']} has sha256 {digest[:12]}..., the card says "
                             f"{str(obj.get('sha256'))[:12]}... (run `dvc repro card` and commit)")


def release_card(tag: str, commit: str, repo_url: str, metrics_dir: Path = Path("metrics")) -> str:
    generate, clean, split, evaluate = (read_json(metrics_dir / n, {}) for n in ("generate.json", "clean.json", "split.json", "evaluate.json"))
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
    card = cards()
    if split:
        sizes = " / ".join(f"{n} {name}" for name, n in split.get("conversations", {}).items())
        lines.append(f"- conversations per split: {sizes}")
    if card:
        lines.append("- cards: " + ", ".join(f"`{p}`" for p in card.values()) + " (a Hugging Face dataset card, "
                     "Croissant 1.1 metadata with Responsible-AI fields)")
    for model, kinds in (evaluate.get("models") or {}).items():
        base, tuned = kinds.get("base", {}), kinds.get("finetuned", {})
        if base and tuned:
            lines.append(f"- {model}: perplexity {base['perplexity']:.2f} -> {tuned['perplexity']:.2f}, rescaled "
                         f"embedding score {base['embedding_score_rescaled']:.3f} -> "
                         f"{tuned['embedding_score_rescaled']:.3f}")
    folder = str(Path(card["README.md"]).parent) if "README.md" in card else relative_paths()["split"]
    lines += ["", "## Use it from another project", "", "```bash",
              f"dvc import {repo_url} {folder}/train.parquet --rev {tag}    # tracked, pinned to this release",
              f"dvc get {repo_url} {folder} --rev {tag} -o hiwar-data       # the splits and both cards",
              "```", "", "```python", "import datasets, mlcroissant",
              'ds = datasets.load_dataset("hiwar-data")                        # train, validation, test from the card',
              'records = mlcroissant.Dataset("hiwar-data/croissant.json").records("conversations")',
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
    if load_section("card").date_published is None:
        raise HiwarError("params.yaml: card.date_published: not set (a release's cards carry its date: set it, "
                         "run `dvc repro card`, commit, then publish)")
    if "croissant.json" in cards():
        check_croissant(Path(cards()["croissant.json"]))
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
