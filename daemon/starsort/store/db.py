"""Opening the database, and the one thread that writes to it.

Every write in the service goes through `Writer`, a thread that owns the only
write connection (datasette's `_execute_writes`): the watchdog handler, the
settle loop and filing all hand it functions. SQLite allows one writer at a
time anyway; funnelling writes through one thread means no "database is
locked" errors and no deferred-transaction upgrade deadlocks.

`status` and `report` run in other processes and only read.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlite_utils import Database

from .. import crashpoints
from .migrations import migrations

log = logging.getLogger(__name__)
T = TypeVar("T")

_SHUTDOWN = object()


def connect(path: Path | str, *, readonly: bool = False) -> Database:
    """A connection with the pragmas the queue's guarantees rely on."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        db = Database(conn)
        db.execute("PRAGMA busy_timeout = 30000")
        return db
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
    db = Database(conn)
    db.execute("PRAGMA journal_mode = WAL")
    # NORMAL: a commit is safe from a crash of the process at once, and from a
    # power cut at the next FULL commit, which writes every earlier one to
    # disk with it. The commits a power cut must not undo are made FULL
    # (`durably`): the move journal's before a file enters the library and
    # before a source leaves the inbox. Every commit FULL cost the filing of
    # one photo about ten fsyncs.
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 30000")
    return db


def migrate(db: Database, path: Path | str | None = None) -> list[str]:
    """Apply pending migrations, backing the database up first if it has data."""
    pending = [m.name for m in migrations.pending(db)]
    if not pending:
        return []
    if path is not None and Path(path).exists() and "photos" in db.table_names():
        backup = Path(f"{path}.bak-{time.strftime('%Y%m%d%H%M%S')}")
        # The backup API, never a file copy: copying a live SQLite file with
        # another fd drops our POSIX locks (sqlite howtocorrupt §2.2).
        dst = sqlite3.connect(str(backup))
        with dst:
            db.conn.backup(dst)
        dst.close()
        log.info("backed up %s to %s before migrating", path, backup)
    migrations.apply(db)
    log.info("applied migrations: %s", ", ".join(pending))
    return pending


class Writer(threading.Thread):
    """Runs submitted functions, one at a time, on the only write connection."""

    def __init__(self, path: Path | str):
        super().__init__(name="starsort-writer", daemon=True)
        self.path = path
        self._q: queue.Queue = queue.Queue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.db: Database | None = None

    def run(self) -> None:
        try:
            self.db = connect(self.path)
            migrate(self.db, self.path)
        except BaseException as e:  # reported to start()'s caller
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        while True:
            item = self._q.get()
            if item is _SHUTDOWN:
                break
            fn, fut = item
            try:
                result = fn(self.db)
                crashpoints.hit("commit")
            except BaseException as e:
                if fut is None:
                    log.exception("a background database write failed")
                else:
                    fut.set_exception(e)
            else:
                if fut is not None:
                    fut.set_result(result)
        self.db.conn.close()

    def start(self) -> "Writer":
        super().start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Callable[[Database], T]) -> T:
        """Run fn(db) on the writer and wait for its result (or exception)."""
        if threading.current_thread() is self:
            result = fn(self.db)
            crashpoints.hit("commit")
            return result
        fut: Future = Future()
        self._q.put((fn, fut))
        return fut.result()

    def submit(self, fn: Callable[[Database], Any]) -> None:
        """Queue fn(db) and return at once; a failure is logged, never raised here."""
        self._q.put((fn, None))

    def close(self, timeout: float = 10.0) -> None:
        self._q.put(_SHUTDOWN)
        self.join(timeout)
        if self.is_alive():
            log.warning("database writer did not stop within %.0fs", timeout)


@contextlib.contextmanager
def durably(db: Database) -> Iterator[None]:
    """Commits made inside are on disk when they return, and so is every commit before them.

    For the facts the filesystem is about to act on ("this file is placed
    there", so its source may go): with WAL, one FULL commit syncs the whole
    log, so the NORMAL commits before it cost no fsync of their own.
    """
    db.execute("PRAGMA synchronous = FULL")
    try:
        yield
    finally:
        db.execute("PRAGMA synchronous = NORMAL")


def transaction(db: Database) -> Any:
    """BEGIN IMMEDIATE ... COMMIT, so a read-modify-write never deadlocks on upgrade."""
    return _Immediate(db.conn)


class _Immediate:
    """BEGIN IMMEDIATE at the outermost level; a savepoint when already inside one."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.nested = False

    def __enter__(self) -> sqlite3.Connection:
        self.nested = self.conn.in_transaction
        self.conn.execute("SAVEPOINT starsort_tx" if self.nested else "BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.nested:
            if exc_type is not None:
                self.conn.execute("ROLLBACK TO starsort_tx")
            self.conn.execute("RELEASE starsort_tx")
        elif exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free
