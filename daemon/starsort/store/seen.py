"""Source files a photo consumed: in copy and rate-in-place modes the originals stay
in the inbox, and a rescan must not queue them again."""
from __future__ import annotations

import os

from sqlite_utils import Database


def remember(db: Database, path: str, st: os.stat_result, photo_id: int) -> None:
    db.execute("INSERT OR IGNORE INTO seen (path, size, mtime_ns, photo_id) VALUES (?, ?, ?, ?)",
               (path, st.st_size, st.st_mtime_ns, photo_id))


def known(db: Database, path: str, size: int, mtime_ns: int) -> bool:
    return db.execute("SELECT 1 FROM seen WHERE path = ? AND size = ? AND mtime_ns = ?",
                      (path, size, mtime_ns)).fetchone() is not None
