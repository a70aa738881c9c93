"""Typed, validated params: one module per section of params.yaml, each a pydantic model (`SECTION`).

Every stage calls `load_section(name)` before doing any work. An unknown key, a wrong type or a missing
file raises `ParamsError` with one line naming the key and what was expected, so the stage exits non-zero
before it writes anything.

A section's module is imported when the section is first loaded, so a stage depends on the modules of the
sections it reads and on no other (dvc.yaml lists them; tests/test_stage_deps.py holds that). A new section
is a new module here and a name in NAMES.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from hiwar.params.base import ParamsError, Section

PARAMS_FILE = Path("params.yaml")

# params.yaml's sections, in the file's order: each is the module hiwar/params/<name>.py
NAMES = ("reproducibility", "engine", "models", "grid", "generate", "clean", "topup", "split", "finetune", "evaluate",
         "rating", "judge", "quality", "card")


class _Registry(Mapping):
    """section name -> its model class, importing the section's module on first use."""

    def __getitem__(self, name: str) -> type[Section]:
        if name not in NAMES:
            raise KeyError(name)
        return importlib.import_module(f"hiwar.params.{name}").SECTION

    def __iter__(self):
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)


SECTIONS: Mapping[str, type[Section]] = _Registry()


def read_params(path: Path = PARAMS_FILE) -> dict:
    if not path.is_file():
        raise ParamsError(f"{path}: file not found (expected the pipeline's params file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc.__class__.__name__}: {exc})".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def _one_line(section: str, exc: ValidationError, path: Path) -> str:
    # A typo shows up twice (an unknown key and a missing one): name the unknown key, which is the cause.
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    key = ".".join([section, *(str(p) for p in err["loc"])])
    got = err.get("input")
    got_text = "" if err["type"] == "missing" or isinstance(got, dict) else f", got {got!r}"
    message = "missing key" if err["type"] == "missing" else err["msg"]
    if err["type"] == "extra_forbidden":
        expected = ", ".join(_expected_keys(SECTIONS[section], err["loc"][:-1]))
        message = f"unknown key (expected one of: {expected})"
        got_text = ""
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {key}: {message}{got_text}{more}"


def _expected_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Keys allowed at `loc`, walking nested models; dict entries (model names) are skipped over."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        inner = getattr(field.annotation, "__args__", (field.annotation,))[-1]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
    return list(model.model_fields)


def load_section(section: str, path: Path = PARAMS_FILE, data: dict | None = None) -> Section:
    """Validated params of one stage's section, or ParamsError naming the offending key."""
    data = read_params(path) if data is None else data
    if section not in data:
        raise ParamsError(f"{path}: {section}: missing section (expected a mapping of {section} params)")
    try:
        return SECTIONS[section].model_validate(data[section])
    except ValidationError as exc:
        raise ParamsError(_one_line(section, exc, path)) from None


def check_all(path: Path = PARAMS_FILE) -> list[str]:
    """Validate every section; return one line per problem (empty when all is well)."""
    data = read_params(path)
    problems = []
    for name in SECTIONS:
        try:
            load_section(name, path, data)
        except ParamsError as exc:
            problems.append(str(exc))
    return problems


__all__ = ["NAMES", "PARAMS_FILE", "SECTIONS", "ParamsError", "Section", "check_all", "load_section", "read_params"]
