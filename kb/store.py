"""Opening the knowledge base: the SQLite file, its migrations, and transactions.

Every write goes through `KnowledgeBase.transaction()`, so a failure leaves the file as it was.
A file that is not a SQLite database, or that a newer servewise wrote, raises one clear error
and is never overwritten.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from kb.migrations import MIGRATIONS
from planner.errors import BadInput


class KnowledgeBase:
    """A handle on one knowledge-base file. Cheap to open; seeds itself on first use."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = _open(self.path)
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise BadInput(
                f"knowledge base {self.path} has schema version {version}, newer than this servewise "
                f"understands ({len(MIGRATIONS)}); upgrade servewise or point SERVEWISE_KB at another file"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """All writes inside commit together or not at all."""
        with self.db.atomic():
            yield self.db

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite_utils.Database, key: str, value: str) -> None:
        db["meta"].upsert({"key": key, "value": value}, pk="key")

    def close(self) -> None:
        self.db.close()


def _open(path: Path) -> sqlite_utils.Database:
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise BadInput(
                    f"{path} is not a servewise knowledge base (not a SQLite file); it was left untouched. "
                    "Move it away or set SERVEWISE_KB to another path."
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite_utils.Database(path)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{path} is a corrupt SQLite file ({exc}); it was left untouched.") from None
    return db
