"""The project's data paths, as dvc.yaml names them in `vars: paths` (the one place they are written).

Stage scripts get their paths as arguments from dvc.yaml's commands. This module serves everything that runs
outside a stage (the `hiwar` commands, the fake backend, benches) with the same names, read from the dvc.yaml
of the project it runs in.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from hiwar.errors import HiwarError

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout this package runs from, when it is one


def project_root(start: str | Path = ".") -> Path:
    """The nearest folder at or above `start` with a dvc.yaml; else `start` itself, read with the layout of
    this package's own dvc.yaml (a scratch folder laid out like a hiwar project)."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return start


def _dvc_yaml(root: Path) -> Path:
    """The project's dvc.yaml when it names paths; else this package's own (a project on the default layout)."""
    for candidate in (root / "dvc.yaml", SOURCE_ROOT / "dvc.yaml"):
        if candidate.is_file() and _read(candidate) is not None:
            return candidate
    raise HiwarError(f"{root}: no dvc.yaml with `vars: paths` here or above (run hiwar inside a hiwar project)")


def _read(dvc_yaml: Path) -> dict[str, str] | None:
    """The `vars: paths` mapping of a dvc.yaml, or None when it has none."""
    return _parse(dvc_yaml, dvc_yaml.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _parse(dvc_yaml: Path, _mtime: int) -> dict[str, str] | None:  # read again when the file changes
    config = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    for entry in config.get("vars", []) if isinstance(config, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("paths"), dict):
            return {str(k): str(v) for k, v in entry["paths"].items()}
    return None


def fill(text: str, paths: dict[str, str]) -> str:
    """`text` with every ${paths.<name>} of dvc.yaml replaced by its path."""
    return re.sub(r"\$\{paths\.(\w+)\}", lambda m: paths[m.group(1)], text)


def relative_paths(start: str | Path = ".") -> dict[str, str]:
    """Every data path dvc.yaml names, relative to the project's folder (as git and DVC address them)."""
    return dict(_read(_dvc_yaml(project_root(start))))


def project_path(name: str, start: str | Path = ".") -> Path:
    """The path dvc.yaml names `name` (e.g. "clean"), made absolute."""
    root = project_root(start)
    paths = relative_paths(root)
    if name not in paths:
        raise HiwarError(f"{_dvc_yaml(root)}: vars: paths: no `{name}` (expected one of: {', '.join(paths)})")
    return root / paths[name]
