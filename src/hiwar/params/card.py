"""The `card` section: the dataset card and croissant.json published with the splits."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hiwar.params.base import Section

HUB_ID = r"^[a-z0-9][a-z0-9-]*$"  # task categories and tags as the hub writes them
LICENSES = {  # a card's licence: the hub's id -> its SPDX id (croissant.json names its SPDX URL); add both ids
    "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-nc-4.0": "CC-BY-NC-4.0", "mit": "MIT",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0", "cc0-1.0": "CC0-1.0", "odc-by": "ODC-By-1.0", "apache-2.0": "Apache-2.0",
    "cdla-permissive-2.0": "CDLA-Permissive-2.0"}


class CardParams(Section):
    pretty_name: str = Field(min_length=1)
    license: Literal[tuple(LICENSES)]  # a hub licence id (LICENSES)
    version: str = Field(pattern=r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")  # MAJOR.MINOR.PATCH
    # the release's, quoted ("2026-12-08": DVC reads no YAML date); null: left out, and `hiwar publish` refuses
    date_published: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")] | None
    url: str | None = Field(pattern=r"^https?://\S+$")  # the dataset's page; null: left out
    creators: list[str] = Field(min_length=1)
    task_categories: list[Annotated[str, Field(pattern=HUB_ID)]] = Field(min_length=1)
    tags: list[Annotated[str, Field(pattern=HUB_ID)]]
    variety: str = Field(min_length=1)  # of Arabic the data is meant to be in (no dialect identification checks it)


SECTION = CardParams
