"""Shared fixtures: an in-memory database with the real schema, and tmp folders."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from starsort.migrations import migrations

DATA = Path(__file__).parent / "data"


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


def copy_fixture(name: str, dest: Path, as_name: str | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / (as_name or name)
    shutil.copyfile(DATA / name, target)
    return target
