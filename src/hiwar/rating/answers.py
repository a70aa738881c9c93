"""The rating page's answers, in one SQLite file (ratings/answers.sqlite) with a write-ahead journal.

Every answer is committed the moment the rater gives it, so closing the browser or killing the server
loses nothing. Each rater has:
- a secret token (the page's address carries it; a request with another token sees other answers);
- a fixed sequence of positions, drawn once when the rater is added: the items in an order of their own,
  plus a share of hidden repeats (in pairwise mode with the two replies swapped), each placed later than
  the item's first showing;
- per position: the answer for each criterion, a comment, and the seconds spent until the last answer.

Pairwise answers are stored as A, B or tie of the key's sides, whatever side the page showed them on.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hiwar.errors import HiwarError

SCHEMA = """
CREATE TABLE IF NOT EXISTS raters (name TEXT PRIMARY KEY, token TEXT UNIQUE NOT NULL, mode TEXT NOT NULL,
                                   created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS positions (rater TEXT NOT NULL, position INTEGER NOT NULL, item TEXT NOT NULL,
                                      showing INTEGER NOT NULL, swapped INTEGER NOT NULL,
                                      seconds REAL NOT NULL DEFAULT 0, comment TEXT NOT NULL DEFAULT '',
                                      PRIMARY KEY (rater, position));
CREATE TABLE IF NOT EXISTS answers (rater TEXT NOT NULL, position INTEGER NOT NULL, criterion TEXT NOT NULL,
                                    value TEXT NOT NULL, answered REAL NOT NULL,
                                    PRIMARY KEY (rater, position, criterion));
"""
MAX_GAP = 300.0  # seconds; a longer gap between two answers is a break, not rating time


def rater_sequence(items: list[str], rater: str, seed: int, repeat_share: float,
                   mode: str) -> list[tuple[str, int, bool]]:
    """(item, showing, swapped) per position: 0 for an item's first showing, 1 for its hidden repeat."""
    digest = hashlib.sha256(f"{seed}:{rater}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    order = [items[i] for i in rng.permutation(len(items))]
    swapped = {item: bool(rng.random() < 0.5) if mode == "pairwise" else False for item in order}
    sequence = [(item, 0, swapped[item]) for item in order]
    # at least two other items between the two showings, so the rater does not see one twice in a row:
    # repeats are drawn from items with three or more after them
    candidates = order[:max(len(order) - 3, 0)]
    repeats = min(int(round(repeat_share * len(items))), len(candidates))
    for item in rng.choice(candidates, size=repeats, replace=False) if repeats else []:
        first = next(i for i, (name, _, _) in enumerate(sequence) if name == item)
        at = int(rng.integers(first + 3, len(sequence) + 1))
        sequence.insert(at, (str(item), 1, not swapped[item] if mode == "pairwise" else False))
    return sequence


class AnswerStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection per store; the web server makes one store per request thread
        self.db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # an answer acknowledged to the browser is on disk
        self.db.executescript(SCHEMA)

    def close(self):
        self.db.close()

    def add_rater(self, name: str, items: list[str], seed: int, repeat_share: float, mode: str) -> str:
        """The rater's token; a new rater gets a token and a sequence, a known one keeps both."""
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise HiwarError(f"rater name {name!r}: use letters, digits, - and _ only (it names files and columns)")
        row = self.db.execute("SELECT token, mode FROM raters WHERE name = ?", (name,)).fetchone()
        if row:
            if row[1] != mode:
                raise HiwarError(f"{self.path}: rater {name} started in {row[1]} mode, but rating.mode is {mode}")
            return row[0]
        token = secrets.token_urlsafe(18)
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT INTO raters VALUES (?, ?, ?, ?)", (name, token, mode, time.time()))
            self.db.executemany("INSERT INTO positions (rater, position, item, showing, swapped) VALUES (?, ?, ?, ?, ?)",
                                [(name, i + 1, item, showing, int(swapped)) for i, (item, showing, swapped)
                                 in enumerate(rater_sequence(items, name, seed, repeat_share, mode))])
        return token

    def unknown_items(self, known: set[str]) -> list[str]:
        """Items in raters' orders that `known` lacks (the database was kept from another export)."""
        return sorted({r[0] for r in self.db.execute("SELECT DISTINCT item FROM positions")} - known)

    def rater(self, token: str) -> str | None:
        row = self.db.execute("SELECT name FROM raters WHERE token = ?", (token,)).fetchone()
        return row[0] if row else None

    def raters(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM raters ORDER BY name")]

    def count(self, rater: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM positions WHERE rater = ?", (rater,)).fetchone()[0]

    def position(self, rater: str, n: int) -> dict | None:
        row = self.db.execute("SELECT item, showing, swapped, comment FROM positions WHERE rater = ? AND position = ?",
                              (rater, n)).fetchone()
        if not row:
            return None
        answers = dict(self.db.execute("SELECT criterion, value FROM answers WHERE rater = ? AND position = ?",
                                       (rater, n)).fetchall())
        return {"item": row[0], "showing": row[1], "swapped": bool(row[2]), "comment": row[3], "answers": answers}

    def save(self, rater: str, n: int, criterion: str, value: str, seconds: float) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?) ON CONFLICT (rater, position, criterion) "
                            "DO UPDATE SET value = excluded.value, answered = excluded.answered",
                            (rater, n, criterion, value, time.time()))
            self._add_seconds(rater, n, seconds)

    def save_comment(self, rater: str, n: int, comment: str, seconds: float) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE positions SET comment = ? WHERE rater = ? AND position = ?", (comment, rater, n))
            self._add_seconds(rater, n, seconds)

    def _add_seconds(self, rater, n, seconds):
        self.db.execute("UPDATE positions SET seconds = seconds + ? WHERE rater = ? AND position = ?",
                        (min(max(float(seconds), 0.0), MAX_GAP), rater, n))

    def first_open(self, rater: str, criteria: list[str]) -> int | None:
        """The first position with a criterion left unanswered (where a returning rater continues)."""
        row = self.db.execute(
            "SELECT p.position FROM positions p LEFT JOIN answers a ON a.rater = p.rater AND a.position = p.position "
            "WHERE p.rater = ? GROUP BY p.position HAVING COUNT(DISTINCT a.criterion) < ? ORDER BY p.position LIMIT 1",
            (rater, len(criteria))).fetchone()
        return row[0] if row else None

    def answered(self, rater: str, criteria: list[str]) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM (SELECT position FROM answers WHERE rater = ? GROUP BY position "
            "HAVING COUNT(DISTINCT criterion) >= ?)", (rater, len(criteria))).fetchone()[0]

    def long(self) -> pd.DataFrame:
        """Every answer: rater, item, showing, criterion, value, seconds (of its position), comment."""
        return pd.read_sql_query(
            "SELECT a.rater, p.item, p.showing, a.criterion, a.value, p.seconds, p.comment FROM answers a "
            "JOIN positions p ON p.rater = a.rater AND p.position = a.position ORDER BY a.rater, a.position, a.criterion",
            self.db)
