"""What every params section shares: the base model and the one error type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from hiwar.errors import HiwarError


class ParamsError(HiwarError):
    """params.yaml is missing, malformed or holds a value the stage cannot use."""


class Section(BaseModel):
    # extra="forbid" turns a typo such as `sed:` into an error instead of a silently ignored key;
    # strict=True keeps YAML's "3" from passing as an int.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
