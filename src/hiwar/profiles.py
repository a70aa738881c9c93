"""Profiles: named sets of params (profiles/<name>.yaml) laid over params.yaml by one command.

    hiwar params use paper        # params.yaml becomes the paper profile; then `dvc status`, `dvc exp run`
    hiwar params check --profile smollm2    # validate without writing anything

A profile file holds only what differs from the tiny profile in params.yaml, or, with `extends: <profile>` at
its top, what differs from that profile (smollm2-server is smollm2 with its models behind llama.cpp). Its sections merge key by key,
except named collections (a mapping of models, endpoints or personas, i.e. a `dict` field of a hiwar.params section) and
lists, which a profile replaces whole: the paper profile's two base models replace the stand-ins instead of
joining them. params.yaml stays the one file DVC reads, so `dvc params diff`, `dvc exp show` and the stages'
params dependencies work unchanged; comments in params.yaml survive the switch. Going back is
`git checkout params.yaml`.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel

from hiwar.errors import HiwarError
from hiwar.params import PARAMS_FILE, SECTIONS, ParamsError, check_all, read_params

PROFILES_DIR = Path("profiles")


def available(root: Path = Path(".")) -> list[str]:
    return sorted(p.stem for p in (root / PROFILES_DIR).glob("*.yaml"))


def read_profile(name: str, root: Path = Path("."), seen: tuple = ()) -> dict:
    path = root / PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise HiwarError(f"{path}: no such profile (expected one of: {', '.join(available(root)) or 'none'})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise HiwarError(f"{path}: expected a mapping of params sections")
    parent = data.pop("extends", None)
    unknown = [key for key in data if key not in SECTIONS]
    if unknown:
        raise HiwarError(f"{path}: {unknown[0]}: unknown section (expected one of: {', '.join(SECTIONS)}, or extends)")
    if parent is None:
        return data
    if parent in (*seen, name):
        raise HiwarError(f"{path}: extends: {parent} extends {name} again (a cycle)")
    merged = read_profile(parent, root, (*seen, name))
    for section, changes in data.items():
        if isinstance(changes, dict) and isinstance(merged.get(section), dict):
            overlay(merged[section], changes, SECTIONS[section])
        else:
            merged[section] = copy.deepcopy(changes)
    return merged


def _field_model(model, key):
    """(is the field a whole-replaced collection, the nested pydantic model to merge into or None)."""
    field = model.model_fields.get(key) if model is not None else None
    if field is None:
        return True, None
    annotation = field.annotation
    if typing.get_origin(annotation) in (dict, list):
        return True, None
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return False, arg
    return True, None


def overlay(base, changes, model) -> None:
    """Lay `changes` over the mapping `base` in place (see the module docstring for the rule)."""
    for key, value in changes.items():
        replace, inner = _field_model(model, key)
        if not replace and isinstance(value, dict) and isinstance(base.get(key), dict):
            overlay(base[key], value, inner)
        else:
            base[key] = copy.deepcopy(value)


def resolved(name: str, root: Path = Path(".")) -> dict:
    """params.yaml with profile `name` laid over it (nothing written)."""
    data = read_params(root / PARAMS_FILE)
    for section, changes in read_profile(name, root).items():
        if not isinstance(changes, dict) or not isinstance(data.get(section), dict):
            data[section] = copy.deepcopy(changes)
        else:
            overlay(data[section], changes, SECTIONS[section])
    return data


def check_profile(name: str, root: Path = Path(".")) -> list[str]:
    """One line per problem of the resolved profile (empty when every section is valid)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"params-{name}.yaml"
        path.write_text(yaml.safe_dump(resolved(name, root), allow_unicode=True, sort_keys=False), encoding="utf-8")
        return [line.replace(str(path), f"profile {name}") for line in check_all(path)]


def _float(value: float) -> str:
    """A float PyYAML (YAML 1.1) reads back as a float: 2e-05 would be a string to it, 2.0e-05 is not."""
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def use(name: str, root: Path = Path(".")) -> Path:
    """Write params.yaml as profile `name` (validated first; comments and key order kept)."""
    from ruamel.yaml import YAML

    problems = check_profile(name, root)
    if problems:
        raise ParamsError(problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    from hiwar.io import atomic_path

    rt = YAML()  # round trip: comments, key order and flow lists stay as written
    rt.width = 120
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    rt.representer.add_representer(float, lambda r, value: r.represent_scalar("tag:yaml.org,2002:float", _float(value)))
    target = root / PARAMS_FILE
    data = rt.load(target.read_text(encoding="utf-8"))
    for section, changes in read_profile(name, root).items():
        overlay(data[section], changes, SECTIONS[section])
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as out:
            rt.dump(data, out)
    return target
