"""Files starsort wrote or merged into besides the moves (sidecars, ratings inside
JPEGs, converted JPEGs), with what they held before, so `undo` can take them back."""
from __future__ import annotations

from sqlite_utils import Database


def record(db: Database, photo_id: int, path: str, kind: str, before: bytes | None, sha256: str,
           now: float) -> None:
    """`before` is the file's bytes before our first write (None: we created it).
    The first record of a path keeps them; later writes only update the hash."""
    db.execute(
        "INSERT INTO artifacts (photo_id, path, kind, created, original, sha256, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256,"
        " updated_at = excluded.updated_at",
        (photo_id, path, kind, int(before is None), None if kind != "sidecar" else before, sha256, now, now))


def record_converted(db: Database, photo_id: int, path: str, sha256: str, now: float) -> None:
    db.execute("INSERT OR IGNORE INTO artifacts (photo_id, path, kind, created, original, sha256,"
               " created_at, updated_at) VALUES (?, ?, 'converted', 1, NULL, ?, ?, ?)",
               (photo_id, path, sha256, now, now))
