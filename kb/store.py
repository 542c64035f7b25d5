"""Opening the knowledge base: the SQLite file, its migrations, and transactions.

Every write goes through `KnowledgeBase.transaction()`, so a failure leaves the file as it was.
A file that is not a SQLite database, or that a newer servewise wrote, raises one clear error
and is never overwritten.

Several servewise processes (CLI runs, the MCP server's worker threads, a scheduled report) share
one file. The database is in WAL mode, so readers never wait for a writer, and every write
transaction starts with `BEGIN IMMEDIATE`: it takes the write lock before it reads anything, so it
waits its turn (busy timeout, then a few retries) instead of failing when a deferred transaction
would have to upgrade a stale read snapshot. Migrations run under that same lock and re-read the
schema version inside it, so two first uses of a new file cannot both migrate it.
"""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from kb.migrations import MIGRATIONS
from planner.errors import BadInput, Unreachable

BUSY_TIMEOUT_MS = 5000
# Each attempt already waits BUSY_TIMEOUT_MS inside SQLite; the retries cover a writer that holds
# the lock for longer (a seed of the whole catalog on a slow disk) without waiting forever.
BUSY_RETRIES = 4


class KnowledgeBaseBusy(Unreachable):
    code = "busy"


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        s in str(exc) for s in ("database is locked", "database table is locked", "busy"))


class KnowledgeBase:
    """A handle on one knowledge-base file. Cheap to open; seeds itself on first use."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = _open(self.path)
        try:
            current = self._version()  # before anything writes: a newer servewise's file stays byte for byte
            _wal(self.path, self.db)
            if current < len(MIGRATIONS):
                self._migrate()
        except BaseException:
            self.db.close()
            raise

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = self._version()  # again, under the write lock: another process may have migrated
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                db.execute(f"PRAGMA user_version = {number}")

    def _version(self) -> int:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise BadInput(
                f"knowledge base {self.path} has schema version {version}, newer than this servewise "
                f"understands ({len(MIGRATIONS)}); upgrade servewise or point SERVEWISE_KB at another file"
            )
        return version

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """All writes inside commit together or not at all; the write lock is taken first (BEGIN IMMEDIATE).
        Nested use is a savepoint of the enclosing transaction."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        _with_retry(self.path, lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self.db
            _with_retry(self.path, lambda: conn.execute("COMMIT"))
        except BaseException:  # from the body or from the COMMIT: nothing of it stays
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite_utils.Database, key: str, value: str) -> None:
        db["meta"].upsert({"key": key, "value": value}, pk="key")

    def close(self) -> None:
        self.db.close()


def _with_retry(path: Path, step):
    for attempt in range(BUSY_RETRIES + 1):
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            if attempt == BUSY_RETRIES:
                raise KnowledgeBaseBusy(
                    f"the knowledge base {path} is locked by another servewise process that did not finish in "
                    f"{(BUSY_RETRIES + 1) * BUSY_TIMEOUT_MS / 1000:g} s; try again when it is done") from None
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _wal(path: Path, db: sqlite_utils.Database) -> None:
    if _with_retry(path, lambda: db.execute("PRAGMA journal_mode").fetchone()[0]) != "wal":
        # Persistent in the file: done once, by whichever process gets there first.
        _with_retry(path, lambda: db.execute("PRAGMA journal_mode = WAL").fetchone())


def _open(path: Path) -> sqlite_utils.Database:
    try:
        if path.exists():
            st = path.stat()
            if stat.S_ISDIR(st.st_mode):
                raise BadInput(f"{path} is a directory, not a knowledge-base file; set SERVEWISE_KB to a file path")
            if not stat.S_ISREG(st.st_mode):
                raise BadInput(f"{path} is not a regular file; set SERVEWISE_KB to a file path")
            # No header read of our own here: closing any descriptor of the file drops every POSIX lock this
            # process's SQLite connections hold on it, and another process may then delete the WAL under them
            # (sqlite.org/howtocorrupt.html, 2.2). SQLite's own first read says "file is not a database" instead.
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot use {path} as the knowledge base: {exc.strerror}") from None
    try:
        db = sqlite_utils.Database(path)
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"cannot open the knowledge base {path}: {exc}") from None
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        _with_retry(path, lambda: db.execute("SELECT count(*) FROM sqlite_master").fetchone())
    except KnowledgeBaseBusy:
        db.close()
        raise
    except sqlite3.DatabaseError as exc:
        db.close()
        if is_busy(exc):
            raise KnowledgeBaseBusy(f"the knowledge base {path} is locked by another process; try again") from None
        if "file is not a database" in str(exc):
            raise BadInput(f"{path} is not a servewise knowledge base (not a SQLite file); it was left untouched. "
                           "Move it away or set SERVEWISE_KB to another path.") from None
        raise BadInput(f"{path} is a corrupt SQLite file ({exc}); it was left untouched.") from None
    return db
