"""The bundled data (git-tracked, dvc.yaml's `paths.bundled`): topics, countries and hand-written Arabic conversations.

They feed the prompt grid (topics x countries), few-shot examples, the tiny stand-in models (trained on the
conversations) and the tests. ("seed" in hiwar only ever means a random seed.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from hiwar.errors import HiwarError
from hiwar.io import read_jsonl
from hiwar.paths import project_path

@dataclass(frozen=True)
class Bundled:
    topics: pd.DataFrame  # topic_id, name_en, name_ar, description_ar
    countries: pd.DataFrame  # iso2, iso3, name_en, name_ar, region
    conversations: list[dict]  # id, topic, country, messages


def _read_table(path: Path, key: str, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected the bundled table with columns {', '.join(columns)})")
    # keep_default_na=False: Namibia's code "NA" is a country, not a missing value.
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise HiwarError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame[key].duplicated().any():
        raise HiwarError(f"{path}: duplicate {key} {frame[key][frame[key].duplicated()].iloc[0]!r}")
    return frame.set_index(key, drop=False)


def check_messages(messages, where: str) -> None:
    """Raise unless `messages` is a non-empty user/assistant alternation that starts with the user
    (an optional leading system message aside) and ends with the assistant."""
    if not isinstance(messages, list) or not messages:
        raise HiwarError(f"{where}: messages must be a non-empty list of {{role, content}}")
    turns = messages[1:] if messages[0].get("role") == "system" else messages
    for i, message in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.get("role") != expected or not str(message.get("content", "")).strip():
            raise HiwarError(f"{where}: message {i}: expected a non-empty {expected!r} turn, got {message!r:.80}")
    if len(turns) % 2:
        raise HiwarError(f"{where}: the last message must be the assistant's")


def load_conversations(bundled_dir: Path, topics: pd.DataFrame) -> list[dict]:
    path = bundled_dir / "conversations.jsonl"
    if not path.is_file():
        raise HiwarError(f"{path}: file not found (expected the bundled conversations, one JSON object per line)")
    rows = read_jsonl(path)
    for number, row in enumerate(rows, 1):
        where = f"{path}:{number}"
        if row.get("topic") not in topics.index:
            raise HiwarError(f"{where}: unknown topic {row.get('topic')!r} (expected a topic_id from topics.csv)")
        check_messages(row.get("messages"), where)
    return rows


def load_bundled(bundled_dir: str | Path | None = None) -> Bundled:
    """The bundled tables and conversations in `bundled_dir`, by default the project's (dvc.yaml)."""
    folder = bundled_dir if bundled_dir is not None else project_path("bundled")
    # Cached by absolute path: a relative path means something else after a chdir.
    return _load_bundled(Path(folder).resolve())


@lru_cache(maxsize=4)
def _load_bundled(bundled_dir: Path) -> Bundled:
    topics = _read_table(bundled_dir / "topics.csv", "topic_id", ["topic_id", "name_en", "name_ar", "description_ar"])
    countries = _read_table(bundled_dir / "countries.csv", "iso2", ["iso2", "iso3", "name_en", "name_ar", "region"])
    return Bundled(topics, countries, load_conversations(bundled_dir, topics))
