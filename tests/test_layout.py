"""The house rules of the code layout, checked on the source itself (one room per concern)."""

import ast

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


@pytest.mark.parametrize("script", sorted((ROOT / "stages").glob("*.py")), ids=lambda p: p.name)
def test_stage_scripts_stay_thin(script):
    assert len(script.read_text(encoding="utf-8").splitlines()) < 60


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
