"""The one `service` row: which process runs, since when, and its heartbeat, for `status`."""
from __future__ import annotations

import os

from sqlite_utils import Database


def started(db: Database, now: float, running_as_root: bool, config_path: str) -> None:
    db.execute(
        "INSERT INTO service (id, pid, started_at, heartbeat_at, stopped_at, running_as_root, config_path)"
        " VALUES (1, ?, ?, ?, NULL, ?, ?) ON CONFLICT(id) DO UPDATE SET pid = excluded.pid,"
        " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL,"
        " running_as_root = excluded.running_as_root, config_path = excluded.config_path, review_port = NULL",
        (os.getpid(), now, now, int(running_as_root), config_path))


def heartbeat(db: Database, now: float) -> None:
    db.execute("UPDATE service SET heartbeat_at = ? WHERE id = 1", (now,))


def stopped(db: Database, now: float) -> None:
    db.execute("UPDATE service SET stopped_at = ?, heartbeat_at = ? WHERE id = 1", (now, now))


def review_port(db: Database, port: int | None) -> None:
    """Where the running service's review page listens (None: it serves none)."""
    db.execute("UPDATE service SET review_port = ? WHERE id = 1", (port,))
