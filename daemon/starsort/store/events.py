"""Events worth showing in `status`: errors, warnings, and what undo did."""
from __future__ import annotations

from sqlite_utils import Database


def add(db: Database, level: str, message: str, at: float) -> None:
    db.execute("INSERT INTO events (at, level, message) VALUES (?, ?, ?)", (at, level, message))
