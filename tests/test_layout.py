"""The house rules of the code layout, checked on the source itself (one room per concern)."""

import ast
import re

import pytest
import yaml

from conftest import ROOT

SRC = ROOT / "src/hiwar"
# The packages that own a stage's work; they may reach each other only through these small modules.
PACKAGES = {"generation", "cleaning", "training", "evaluation"}
SHARED_ACROSS_PACKAGES = {"hiwar.training.chat_format", "hiwar.training.models"}


def imports() -> dict[str, set[str]]:
    """Module name -> the hiwar modules it imports (at any depth of the file)."""
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        found[name] = {t for t in targets if t.split(".")[0] in ("hiwar", "stages")}
    return found


def external_imports() -> dict[str, set[str]]:
    """Module name -> every module it imports, hiwar's and others'."""
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = {alias.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                       if isinstance(node, ast.Import) for alias in node.names}
        found[name] |= {node.module for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                        if isinstance(node, ast.ImportFrom) and node.module}
    return found


def test_no_library_module_imports_a_stage_or_the_cli():
    offenders = {m: t for m, ts in imports().items() if not m.startswith("hiwar.cli")
                 for t in ts if t.startswith(("hiwar.cli", "stages"))}
    assert offenders == {}


def test_stage_packages_reach_each_other_only_through_shared_modules():
    crossing = []
    for module, targets in imports().items():
        home = module.split(".")[1] if module.count(".") else None
        for target in targets:
            parts = target.split(".")
            other = parts[1] if len(parts) > 1 else None
            if home in PACKAGES and other in PACKAGES and other != home and target not in SHARED_ACROSS_PACKAGES:
                crossing.append(f"{module} -> {target}")
    assert crossing == []


# A data path: a string that is nothing but a path under one of the project's data folders.
DATA_PATH = re.compile(r"(data|models|metrics|plots|ratings|dvclive)/[\w./{}*-]*")


def literals(path) -> list[str]:
    """Every string constant of a file (f-string pieces included), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("script", sorted((ROOT / "stages").glob("*.py")), ids=lambda p: p.name)
def test_no_stage_script_names_a_data_path_or_reads_the_launchers_rank(script):
    # Paths come from dvc.yaml (`vars: paths`), and which process writes is the library's business.
    found = [s for s in literals(script) if DATA_PATH.fullmatch(s) or s in ("RANK", "LOCAL_RANK", "WORLD_SIZE")]
    assert found == [], f"{script.name}: {found}"


def test_no_library_module_has_a_data_path_of_its_own():
    # Defaults come from dvc.yaml through hiwar.paths; a path written in a module would drift from it.
    found = {str(p.relative_to(SRC)): hits for p in SRC.rglob("*.py")
             if (hits := [s for s in literals(p) if DATA_PATH.fullmatch(s)])}
    assert found == {}


def test_only_the_engine_module_imports_ray():
    importers = {m for m, targets in external_imports().items() if any(t.split(".")[0] == "ray" for t in targets)}
    assert importers <= {"hiwar.engine"}


def test_the_guards_see_what_they_guard_against():
    assert DATA_PATH.fullmatch("data/clean/conversations.parquet") and DATA_PATH.fullmatch("metrics/")
    assert not DATA_PATH.fullmatch("metrics/evaluate.json:models.*.perplexity")  # a DVC metric key
    assert not DATA_PATH.fullmatch("see data/clean for the rows")  # prose
    assert not DATA_PATH.fullmatch("models")  # a key, not a path


def test_every_stage_lists_its_own_script_as_a_dependency():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, stage in stages.items():
        spec = stage.get("do", stage)
        script = next(word for word in spec["cmd"].split() if word.startswith("stages/"))
        assert script in spec["deps"], name


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 160


def test_no_module_grows_past_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}
