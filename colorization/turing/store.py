"""The answers of a study in SQLite (WAL, synchronous FULL): each answer is committed when it arrives, so
a server that stops or is killed loses nothing, and a rater who comes back continues where they were.

A rater's whole plan is written when they start: one row per trial with the side of the real photo and,
for each side, a fresh random token under which the server shows that picture. Tokens are the only ids a
rater ever sees (in the page and the image URLs); the trial's kind, method and photo stay on the server.
An image token is served only while its trial is the rater's current one and unanswered. Answers are
taken in order: only the current trial can be answered, once (a compare-and-set in one UPDATE).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from colorization.turing.protocol import SIDES, PlannedTrial
from colorization.turing.study import Study

__all__ = ["AnswerError", "Store", "Trial", "valid_token"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS raters (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    token TEXT PRIMARY KEY,
    rater TEXT NOT NULL REFERENCES raters(id),
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    image INTEGER NOT NULL,
    method TEXT NOT NULL,
    real_side TEXT NOT NULL,
    left_asset TEXT NOT NULL,
    right_asset TEXT NOT NULL,
    left_token TEXT NOT NULL UNIQUE,
    right_token TEXT NOT NULL UNIQUE,
    shown REAL,
    answer TEXT,
    answered REAL,
    UNIQUE (rater, position)
);
CREATE INDEX IF NOT EXISTS trials_open ON trials (rater, answer, position);
"""


def valid_token(value: object) -> bool:
    """True for a string shaped like the tokens this store makes (URL-safe base64, 16-64 characters)."""
    return isinstance(value, str) and bool(_TOKEN.match(value))


def _token() -> str:
    return secrets.token_urlsafe(18)


class AnswerError(Exception):
    """An answer that changes nothing: `status` is the HTTP status the app answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Trial:
    """One stored trial as the server and the results see it."""

    token: str
    rater: str
    position: int
    kind: str
    image: int
    method: str
    real_side: str
    left_token: str
    right_token: str
    answer: str | None

    @property
    def fooled(self) -> bool:
        """The rater picked the real photo as the fake one (the fake passed for real)."""
        return self.answer == self.real_side

    @property
    def correct(self) -> bool:
        """The rater picked the fake."""
        return self.answer is not None and self.answer != self.real_side


_COLUMNS = "token, rater, position, kind, image, method, real_side, left_token, right_token, answer"


class Store:
    """The study's SQLite file, with one connection per thread (the server's worker threads each keep
    theirs: closing the last connection of a WAL database checkpoints it, a cost per call otherwise)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed at the end (BEGIN IMMEDIATE: writers queue instead of failing)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------------ raters
    def add_rater(self, study: Study, plan: list[PlannedTrial]) -> str:
        """Store a new rater and their whole plan; returns the rater id (a random token)."""
        rater = _token()
        rows = []
        for position, trial in enumerate(plan):
            left, right = trial.assets(study)
            rows.append(
                (_token(), rater, position, trial.kind, trial.image, trial.method, trial.real_side)
                + (left, right, _token(), _token())
            )
        with self._write() as db:
            db.execute("INSERT INTO raters (id, created) VALUES (?, ?)", (rater, time.time()))
            db.executemany(
                "INSERT INTO trials (token, rater, position, kind, image, method, real_side, left_asset, "
                "right_asset, left_token, right_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return rater

    def has_rater(self, rater: object) -> bool:
        """True when `rater` is the id of a stored rater."""
        if not valid_token(rater):
            return False
        with self._connect() as db:
            return db.execute("SELECT 1 FROM raters WHERE id = ?", (rater,)).fetchone() is not None

    def progress(self, rater: str) -> tuple[int, int]:
        """(answered, total) trials of a rater."""
        with self._connect() as db:
            done, total = db.execute(
                "SELECT COUNT(answer), COUNT(*) FROM trials WHERE rater = ?", (rater,)
            ).fetchone()
        return int(done), int(total)

    # ------------------------------------------------------------------ trials
    def current(self, rater: str) -> Trial | None:
        """The rater's first unanswered trial (marked as shown), or None when they are done."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM trials WHERE rater = ? AND answer IS NULL ORDER BY position LIMIT 1",
                (rater,),
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE trials SET shown = COALESCE(shown, ?) WHERE token = ?", (time.time(), row[0]))
        return Trial(*row)

    def image(self, token: object) -> str | None:
        """The asset id shown under an image token, while its trial is current and unanswered; else None."""
        if not valid_token(token):
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT t.rater, t.position, CASE WHEN t.left_token = ? THEN t.left_asset ELSE t.right_asset "
                "END FROM trials t WHERE (t.left_token = ? OR t.right_token = ?) AND t.answer IS NULL",
                (token, token, token),
            ).fetchone()
            if row is None:
                return None
            rater, position, asset = row
            first = db.execute(
                "SELECT MIN(position) FROM trials WHERE rater = ? AND answer IS NULL", (rater,)
            ).fetchone()[0]
        return asset if first == position else None

    def answer(self, rater: str, token: object, fake_side: object) -> Trial:
        """Record which side the rater says is fake for their current trial; AnswerError changes nothing."""
        if fake_side not in SIDES:
            raise AnswerError(400, f"answer must be one of {', '.join(SIDES)}")
        if not valid_token(token):
            raise AnswerError(404, "unknown trial")
        with self._write() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM trials WHERE token = ?", (token,)).fetchone()
            if row is None or row[1] != rater:
                raise AnswerError(404, "unknown trial")
            trial = Trial(*row)
            if trial.answer is not None:
                raise AnswerError(409, "this trial is already answered")
            first = db.execute(
                "SELECT MIN(position) FROM trials WHERE rater = ? AND answer IS NULL", (rater,)
            ).fetchone()[0]
            if first != trial.position:
                raise AnswerError(409, "this is not the current trial")
            db.execute(
                "UPDATE trials SET answer = ?, answered = ? WHERE token = ? AND answer IS NULL",
                (fake_side, time.time(), token),
            )
        return Trial(**{**trial.__dict__, "answer": fake_side})

    def trials(self, answered_only: bool = True) -> list[Trial]:
        """Every stored trial (only the answered ones by default), by rater and position."""
        where = "WHERE answer IS NOT NULL" if answered_only else ""
        with self._connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM trials {where} ORDER BY rater, position").fetchall()
        return [Trial(*row) for row in rows]

    def raters(self) -> list[str]:
        """Every rater id, oldest first."""
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT id FROM raters ORDER BY created, id").fetchall()]
