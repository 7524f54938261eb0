"""Shared fixtures: an in-memory database with the real schema, tmp folders, a Library on a
real writer thread (as the service builds one, without its loop), and a guard that fails
any test which leaves a thread running."""
from __future__ import annotations

import gc
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlite_utils import Database

from starsort.config import Config
from starsort.library.context import Library
from starsort.store.db import Writer
from starsort.store.migrations import migrations

from .helpers import DATA, copy_fixture  # noqa: F401 - defined once in helpers: import them from there, not from here

# The review page's previews, which in-process analysis writes, go to a folder of this run,
# never into the developer's own ~/.cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="starsort-tests-cache-")

# How long a test's new threads get to finish after it before they count as leaked.
THREAD_GRACE = 2.0

# Threads that outlive a test by design, by name; each with why it is not a leak.
LONG_LIVED_THREADS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def no_leaked_threads(request):
    """Fail a test that leaves a thread running, as watchdog's own suite does: a leaked
    observer or writer thread keeps files open, and its work lands in the next test.
    Being autouse, this is set up before the test's other fixtures and torn down after
    them, so threads those fixtures stop at teardown do not count."""
    before = set(threading.enumerate())
    yield
    gc.collect()                     # what only a finaliser stops is stopped now
    end = time.monotonic() + THREAD_GRACE
    new = [t for t in threading.enumerate() if t not in before and t.name not in LONG_LIVED_THREADS]
    for t in new:
        t.join(timeout=max(0.0, end - time.monotonic()))
    leaked = [t for t in new if t.is_alive()]
    if leaked:
        names = ", ".join(f"{t.name!r} ({type(t).__module__}.{type(t).__qualname__})" for t in leaked)
        pytest.fail(f"{request.node.nodeid} leaked {len(leaked)} thread(s): {names}", pytrace=False)


@pytest.fixture
def fresh_db() -> Database:
    # Autocommit, as the service's own connection is (db.connect).
    db = Database(sqlite3.connect(":memory:", isolation_level=None))
    migrations.apply(db)
    yield db
    db.conn.close()


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    inbox.mkdir()
    library.mkdir()
    return {"inbox": inbox, "library": library, "db": tmp_path / "state" / "starsort.db", "root": tmp_path}


@pytest.fixture
def make_library(folders):
    """make_library(once=True, **config) -> Library on the test's folders; writers closed at teardown."""
    made: list[Library] = []

    def make(once: bool = True, **config) -> Library:
        cfg = Config.model_validate({"inboxes": [str(folders["inbox"])], "library": str(folders["library"]),
                                     "database": str(folders["db"]), **config})
        lib = Library(cfg, Writer(cfg.database).start(), once=once)
        made.append(lib)
        return lib
    yield make
    for lib in made:
        lib.writer.close()


@pytest.fixture
def lib(make_library) -> Library:
    return make_library()
