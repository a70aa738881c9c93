"""The house rules of the code layout, checked on the source itself (one room per concern)."""

import ast
import re

import pytest
import yaml

from conftest import ROOT

SRC = ROOT / "src/hiwar"
# One room per concern, shared pieces on the ground floor (modules directly under src/hiwar). Every package
# says which ground-floor modules and which modules of other packages it may import; any other import fails
# until its row names it.
LAYERS = {
    "generation": ({"bundled", "engine", "errors", "io", "params"}, set()),
    "cleaning": ({"arabic", "dedup", "engine", "errors", "io", "params"}, set()),
    "training": ({"errors", "io", "params"}, set()),
    "evaluation": ({"encoder", "errors", "io", "params", "paths", "stats"},
                   {"training.chat_format", "training.models"}),
    "rating": ({"agreement", "errors", "pairwise", "stats"}, set()),
    "judge": ({"agreement", "errors", "pairwise", "params", "stats"},
              {"generation", "generation.asking", "generation.cache"}),
    "quality": ({"arabic", "engine", "errors", "io", "params", "paths"}, set()),
    "compare": ({"errors", "io", "paths", "remote"}, set()),
    # top-up rounds ask the generator and clean its answers: the one room that drives both
    "topup": ({"engine", "errors", "io", "params"},
              {"cleaning", "generation", "generation.asking", "generation.cache", "generation.driver",
               "generation.grid"}),
    # the card stage reads every stage's outputs, never their code (the prompt templates are read as files)
    "cards": ({"arabic", "errors", "io", "params"}, set()),
    # the top floor: one command group per concern, each reaching the room it drives
    "cli": ({"bundled", "errors", "io", "models_import", "params", "paths", "profiles", "release", "remote", "serving",
             "terminal", "verify"},
            {"compare", "compare.rows", "compare.table", "evaluation.metrics", "evaluation.report",
             "generation.cache", "generation.driver", "generation.grid", "quality.diff", "rating.answers",
             "rating.app", "rating.sheets", "training.chat_format", "training.models"}),
}
# Ground-floor packages: a shared piece with one module per part (params: one per section of params.yaml). A row
# that names one may import any of its modules, and its modules obey the ground floor's rule.
GROUND_PACKAGES = {"params"}
# The ground floor leans on no room, except these (the prompt builder and the chat format, used by the
# stand-in models, the loopback server and the GGUF import).
GROUND_FLOOR_REACHES = {"loopback": {"generation.prompts"}, "standins": {"generation.prompts"},
                        "models_import": {"training.chat_format"}}


def module_name(path) -> str:
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split(".")[1:])
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports() -> dict[str, set[str]]:
    """Module name -> the hiwar modules it imports (at any depth of the file); `from pkg import module`
    counts as pkg.module."""
    found = {}
    for path in SRC.rglob("*.py"):
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                inside = node.module.split(".")[0] == "hiwar"
                submodules = {f"{node.module}.{a.name}" for a in node.names if inside and is_module(f"{node.module}.{a.name}")}
                targets.update(submodules or {node.module})
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        found[module_name(path)] = {t for t in targets if t.split(".")[0] in ("hiwar", "stages")}
    return found


def external_imports() -> dict[str, set[str]]:
    """Module name -> every module it imports, hiwar's and others'."""
    found = {}
    for path in SRC.rglob("*.py"):
        name = module_name(path)
        found[name] = {alias.name for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                       if isinstance(node, ast.Import) for alias in node.names}
        found[name] |= {node.module for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                        if isinstance(node, ast.ImportFrom) and node.module}
    return found


def packages() -> set[str]:
    """Every folder of src/hiwar that holds Python code, with or without an __init__.py."""
    return {p.parent.relative_to(SRC).parts[0] for p in SRC.rglob("*.py") if p.parent != SRC} - GROUND_PACKAGES


def ground_floor() -> set[str]:
    return {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"} | GROUND_PACKAGES


def floor_name(target: str) -> str:
    """A hiwar module's name as the layer table writes it: a ground-floor package's modules go by its name."""
    name = target.removeprefix("hiwar.")
    return name.split(".")[0] if name.split(".")[0] in GROUND_PACKAGES else name


def test_no_library_module_imports_a_stage_or_the_cli():
    offenders = {m: t for m, ts in imports().items() if not m.startswith("hiwar.cli")
                 for t in ts if t.startswith(("hiwar.cli", "stages"))}
    assert offenders == {}


def test_every_package_has_a_row_in_the_layer_table():
    assert packages() == set(LAYERS), "a package of src/hiwar is missing from LAYERS (or LAYERS names one gone)"
    named = {m for ground, cross in LAYERS.values() for m in ground | cross}
    named |= {m for reaches in GROUND_FLOOR_REACHES.values() for m in reaches}
    assert {m for m in named if not is_module(f"hiwar.{m}")} == set()  # no row names a module that is gone


def test_each_package_imports_only_what_its_row_allows():
    ground = ground_floor()
    crossing = []
    for module, targets in imports().items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] in ground:
            continue
        home = parts[1]
        allowed_ground, allowed_cross = LAYERS.get(home, (set(), set()))  # no row: nothing allowed
        for target in targets:
            name = floor_name(target)
            if target == "hiwar" or name.split(".")[0] == home:
                continue
            if not (name in allowed_ground if name in ground else name in allowed_cross):
                crossing.append(f"{module} -> {target}")
    assert crossing == []


def test_the_ground_floor_leans_on_no_package():
    ground = ground_floor()
    upward = []
    for module, targets in imports().items():
        floor = module.split(".")[1] if "." in module else None
        if floor not in ground:
            continue
        upward += [f"{module} -> {target}" for target in targets if target != "hiwar"
                   and target.split(".")[1] not in ground
                   and target.removeprefix("hiwar.") not in GROUND_FLOOR_REACHES.get(floor, set())]
    assert upward == []


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
