"""Fidelity to the grid cell: is a conversation about the topic it was asked for, and does it name the
country? Topic: rank of the own topic's description among all topics' descriptions by embedding cosine.
Country: any Arabic form of the country (name, adjective, capital; country_forms.csv among the bundled tables) found on
word boundaries after normalisation, with the usual clitics in front (و ف ب ك ل and the article)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.arabic import match_key
from hiwar.errors import HiwarError

FORMS_FILE = "country_forms.csv"  # in the bundled folder
# Conjunction (و/ف), then a preposition (ب/ك/ل), then the article; ل + ال is written لل.
_CLITICS_BEFORE_ARTICLE = "(?:[وف]?(?:[بك]?ال|لل))"
_CLITICS = "(?:[وف]?(?:[بك]?ال|لل|[بلك])?)"
# An adjective (a form ending in ي, after the name) also matches its feminine and plural endings.
_ADJECTIVE_ENDINGS = "(?:ه|ون|ين|ات|يه|يون|يين)?"


def load_forms(path: str | Path, countries: list[str] | None = None) -> dict[str, list[str]]:
    """iso2 -> the country's Arabic forms. Every country in `countries` must have a row."""
    path = Path(path)
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected iso2,forms with the forms separated by '|')")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)  # "NA" is Namibia
    if list(table.columns) != ["iso2", "forms"]:
        raise HiwarError(f"{path}: expected the columns iso2,forms, got {','.join(table.columns)}")
    forms = {row.iso2: [f.strip() for f in row.forms.split("|") if f.strip()] for row in table.itertuples()}
    empty = [iso for iso, f in forms.items() if not f]
    missing = sorted(set(countries or []) - set(forms))
    if empty or missing:
        raise HiwarError(f"{path}: no forms for {', '.join(empty + missing)} (expected at least the Arabic name)")
    return forms


def _form_pattern(form: str, adjective: bool) -> str:
    key = match_key(form)
    ending = _ADJECTIVE_ENDINGS if adjective and key.endswith("ي") else ""
    if key.startswith("ال"):  # the article belongs to the name: required, written لل after ل
        return _CLITICS_BEFORE_ARTICLE + re.escape(key[2:]) + ending
    return _CLITICS + re.escape(key) + ending


class CountryMatcher:
    def __init__(self, forms: dict[str, list[str]]):
        self.patterns = {
            iso: re.compile(r"(?<!\w)(?:" + "|".join(_form_pattern(f, i > 0) for i, f in enumerate(fs)) + r")(?!\w)")
            for iso, fs in forms.items()
        }

    def mentions(self, text: str, iso2: str) -> bool:
        """Whether `text` names country `iso2` in any of its forms."""
        return bool(self.patterns[iso2].search(match_key(text)))


def topic_ranks(conversations: np.ndarray, topics: np.ndarray, own: np.ndarray) -> np.ndarray:
    """0-based rank of each conversation's own topic (index into `topics`) by cosine, best first.
    Ties count against the own topic, so a conversation equally close to everything is not rewarded."""
    cosines = conversations @ topics.T
    own_score = cosines[np.arange(len(own)), own]
    return (cosines >= own_score[:, None]).sum(axis=1) - 1


def topic_text(name_ar: str, description_ar: str) -> str:
    return f"{name_ar}: {description_ar}"
