"""Settle: a path in the inbox table is ready once it stops changing.

Watchers fire when a write *starts* (watchdog #586), and tethering software
and card readers take seconds to write a file. A file is ready when its size
and mtime have not changed for `settle_seconds` (a file already that old
when first seen needs only a second look that finds it unchanged). An empty file gets a longer
window, because a copy often creates the name first and fills it later.
Ready files go to `intake.pairing`, which makes them photos.
"""
from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass

from sqlite_utils import Database


log = logging.getLogger(__name__)

EMPTY_FILE_GRACE = 5.0


@dataclass
class Ready:
    path: str
    size: int
    mtime_ns: int


def record(db: Database, path: str, now: float | None = None) -> None:
    """What the watcher does with an event: remember the path. Idempotent."""
    db.execute("INSERT OR IGNORE INTO inbox (path, seen_at) VALUES (?, ?)", (path, now or time.time()))


def check(db: Database, settle_seconds: float, now: float | None = None,
          scope: str | None = None) -> tuple[list[Ready], int]:
    """Stat every waiting path (under `scope`, a folder, if given); return those
    that are stable, and how many still wait."""
    now = time.time() if now is None else now
    ready: list[Ready] = []
    waiting = 0
    for row in list(db.query("SELECT * FROM inbox WHERE :scope IS NULL OR substr(path, 1, length(:scope)) = :scope"
                             " ORDER BY path", {"scope": scope})):
        path = row["path"]
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            db.execute("DELETE FROM inbox WHERE path = ?", (path,))
            log.info("%s disappeared before it settled", path)
            continue
        if not stat.S_ISREG(st.st_mode):
            # Symlinks, FIFOs, sockets: opening a FIFO blocks forever, and a
            # symlink could lead us to move files from outside the inbox.
            db.execute("DELETE FROM inbox WHERE path = ?", (path,))
            log.warning("skipping %s: not a regular file", path)
            continue
        if (st.st_size, st.st_mtime_ns) != (row["size"], row["mtime_ns"]):
            since = now
            last_change = max(st.st_mtime, st.st_ctime)
            if row["size"] is None and st.st_size and now - last_change >= settle_seconds:
                # First sight of a file nothing has written to for settle_seconds
                # already (a card's or a folder's old photos): it has held still
                # for that long, so the next look, a moment later, may take it
                # if it still holds. ctime too, because a copy that keeps the
                # camera's mtime still moves ctime with every write.
                since = last_change
            db.execute("UPDATE inbox SET size = ?, mtime_ns = ?, stable_since = ? WHERE path = ?",
                       (st.st_size, st.st_mtime_ns, since, path))
            waiting += 1
            continue
        window = settle_seconds if st.st_size else max(settle_seconds, EMPTY_FILE_GRACE)
        if now - row["stable_since"] >= window:
            ready.append(Ready(path, st.st_size, st.st_mtime_ns))
        else:
            waiting += 1
    return ready, waiting
