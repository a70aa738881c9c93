"""Every DVC stage lists, among its deps, each hiwar module its script imports, directly or not.

A module missing from a stage's deps is a change that `dvc status` cannot see: the stage's outputs go stale
while DVC says everything is up to date. The import closure is computed from the source (ast), not from the
deps themselves, so the check shares nothing with what it checks.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    """The file of a `hiwar...` module, or None for anything outside the package."""
    if name != "hiwar" and not name.startswith("hiwar."):
        return None
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import in `path`, lazy imports inside functions included. A call
    `load_section("x", ...)` imports hiwar/params/x.py on first use, so it counts as that import."""
    package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1]) if path.is_relative_to(SRC) else ""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_section" and node.args
              and isinstance(node.args[0], ast.Constant)):
            names.add(f"hiwar.params.{node.args[0].value}")
    return names


def closure(script: Path) -> set[Path]:
    """The hiwar source files a script needs: its imports, theirs, and each package's __init__ on the way."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
                found = module_file(".".join(parts[:i]))
                if found and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return seen


def stages() -> dict[str, dict]:
    """name -> stage, with foreach stages expanded by their first entry (deps are the same for every key) and
    the data paths of `vars: paths` filled in."""
    config = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    paths = next(v["paths"] for v in config["vars"] if "paths" in v)

    def fill(value):
        if isinstance(value, str):
            return re.sub(r"\$\{paths\.(\w+)\}", lambda m: paths[m.group(1)], value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {fill(k): fill(v) for k, v in value.items()}
        return value

    return {name: fill(stage.get("do", stage)) for name, stage in config["stages"].items()}


def script_of(stage: dict) -> Path:
    return ROOT / next(word for word in stage["cmd"].split() if word.startswith("stages/"))


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return any(relative == dep or relative.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_module_a_stage_imports_is_one_of_its_deps(name):
    stage = stages()[name]
    deps = [dep for dep in stage["deps"] if "${" not in dep]
    script = script_of(stage)
    assert covered(script, deps), f"{name}: its script {script.relative_to(ROOT)} is not in its deps"
    missing = sorted(p.relative_to(ROOT).as_posix() for p in closure(script) if not covered(p, deps))
    assert not missing, f"dvc.yaml: stage {name} imports modules its deps do not cover: {', '.join(missing)}"


def test_the_closure_follows_imports_through_library_modules():
    # stages/quality.py reaches hiwar.arabic only through the quality package: a closure that stopped at the
    # script would miss it, and with it the drift this file is here to catch.
    found = {p.relative_to(ROOT).as_posix() for p in closure(ROOT / "stages/quality.py")}
    assert "src/hiwar/arabic.py" in found and "src/hiwar/quality/__init__.py" in found
