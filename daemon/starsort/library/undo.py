"""`starsort undo`: put filed photos back where they came from, from the move journal.

Every move starsort made is a row in `moves` (src -> dst); every file it wrote
or merged into besides is a row in `artifacts`. Undo walks both, newest photo
first, and for each photo:

1. checks that every member (photo, pair, the user's own sidecars) can go
   back: its filed copy is still there and nothing occupies its old name.
   If not, the whole photo stays where it is and the reason is reported, so
   a pair is never split and nothing is ever overwritten;
2. takes back what starsort wrote, where it is still as starsort left it
   (same SHA-256 as recorded): a sidecar starsort created is removed, a
   sidecar it merged into gets back the bytes it had before the first merge,
   a JPEG it converted from a raw is removed. A file changed since (the
   photographer rated or edited it in darktable) is kept: a created sidecar
   goes back next to its photo, a converted JPEG stays in the library;
3. moves each member back with the filer's own primitive (`fsops.place`:
   `link()`, or a verified copy across filesystems, both refusing an
   existing name), and only when all are back removes the library copies.
   A crash in between leaves two identical copies, never none;
4. marks the photo `undone` and drops its journal rows, so a later run can
   file the same names again.

In copy mode the originals never left: the library copy is removed only if
the original is still in place with the same bytes. A rating written into a
JPEG itself (`xmp.xmp_in_jpeg`) cannot be taken out byte for byte; the JPEG
goes back with the rating inside and the report says so. Undo refuses to run
while the service runs: the service would file the photos again as they land.
"""
from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from sqlite_utils import Database

from ..store import events, photos
from ..store.db import durably, transaction
from .fsops import Collision, fsync_dir, place, sha256_file
from .names import temp_path

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_since(text: str, now: float | None = None) -> float:
    """`2h`, `30m`, `1d` ago, a time today `14:00`, or a local time `2026-11-22 14:00` / ISO 8601;
    epoch seconds."""
    now = time.time() if now is None else now
    m = _DURATION.match(text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    c = _CLOCK.match(text)
    if c:
        hour, minute, second = int(c.group(1)), int(c.group(2)), int(c.group(3) or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"not a time of day: {text!r}")
        t = datetime.fromtimestamp(now).replace(hour=hour, minute=minute, second=second, microsecond=0).timestamp()
        if t > now:
            raise ValueError(f"{text.strip()} today is later than now: nothing was filed since then")
        return t
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use e.g. 2h, 30m, 1d, 14:00 or 2026-11-22T14:00)") from None


@dataclass
class Result:
    restored: list[str] = field(default_factory=list)        # photos moved back (their original paths)
    skipped: list[str] = field(default_factory=list)         # "path: reason"
    removed: list[str] = field(default_factory=list)         # files starsort wrote, removed
    kept: list[str] = field(default_factory=list)            # files starsort wrote, kept: "path: reason"


def photos_to_undo(db: Database, since: float | None) -> list[int]:
    """Photos with moves or written files at or after `since` (all if None), newest first."""
    t = since if since is not None else float("-inf")
    ids = {r[0] for r in db.execute(
        "SELECT DISTINCT photo_id FROM moves WHERE state = 'done' AND created_at >= ?", (t,))}
    ids |= {r[0] for r in db.execute("SELECT DISTINCT photo_id FROM artifacts WHERE created_at >= ?", (t,))}
    return sorted(ids, reverse=True)


def undo(db: Database, since: float | None = None, echo: Callable[[str], None] = lambda s: None) -> Result:
    res = Result()
    for photo_id in photos_to_undo(db, since):
        _undo_photo(db, photo_id, res, echo)
    return res


def undo_photo(db: Database, photo_id: int) -> Result:
    """Put one photo back where it came from (see the module's steps)."""
    res = Result()
    _undo_photo(db, photo_id, res, lambda s: None)
    return res


def _sha(path: str) -> str | None:
    try:
        return sha256_file(path)
    except (FileNotFoundError, IsADirectoryError):
        return None


def _undo_photo(db: Database, photo_id: int, res: Result, echo: Callable[[str], None]) -> None:
    photo = photos.get(db, photo_id)
    moves = list(db.query("SELECT * FROM moves WHERE photo_id = ? ORDER BY id", [photo_id]))
    arts = list(db.query("SELECT * FROM artifacts WHERE photo_id = ? ORDER BY id", [photo_id]))
    if any(m["state"] != "done" for m in moves):
        res.skipped.append(f"{photo['original_path']}: its filing was interrupted; run starsort once to finish it")
        return

    # 1. Can every member go back? One the photographer already put back by
    # hand (its library name gone, its old name there again) is back.
    back = [m for m in moves if not m["copy"]]
    by_hand = [m for m in back if not os.path.lexists(m["dst"]) and os.path.lexists(m["src"])]
    back = [m for m in back if m not in by_hand]
    for m in back:
        if not os.path.lexists(m["dst"]):
            res.skipped.append(f"{m['src']}: its filed copy {m['dst']} is gone (moved or deleted since)")
            return
        if os.path.lexists(m["src"]):
            res.skipped.append(f"{m['src']}: a file of that name is back in its place; nothing overwritten")
            return

    # 2. Decide what to take back of what starsort wrote; act only once the
    # photo is back, so a move back that fails leaves the photo as it was,
    # rating included.
    moved_back = {m["dst"]: m["src"] for m in back}
    remove: list[str] = []
    restore: list[tuple[str, bytes]] = []
    extra_back: list[tuple[str, str]] = []     # (library path, inbox path) of edited sidecars we created
    for a in arts:
        path = a["path"]
        if not os.path.lexists(path):
            continue
        unchanged = _sha(path) == a["sha256"]
        if a["kind"] == "sidecar":
            if unchanged and a["created"]:
                remove.append(path)
            elif unchanged:
                restore.append((path, a["original"] or b""))
            elif a["created"] and path not in moved_back:
                target = _old_place(path, photo, moves)
                if target:
                    extra_back.append((path, target))
                res.kept.append(f"{path}: edited since starsort wrote it; kept, and goes back with its photo")
            else:
                res.kept.append(f"{path}: edited since starsort wrote it; kept as it is")
        elif a["kind"] == "converted":
            if unchanged:
                remove.append(path)
            else:
                res.kept.append(f"{path}: changed since starsort converted it; left in the library")
        elif a["kind"] == "jpeg-xmp":
            res.kept.append(f"{path}: its rating was written into the JPEG (xmp_in_jpeg) and stays there")

    # 3. Move back: place everything first, then remove the library copies.
    placed: list[dict] = []
    try:
        for m in back:
            place(m["dst"], m["src"], copy=False)
            placed.append(m)
        for lib_path, target in extra_back:
            if not os.path.lexists(target):
                place(lib_path, target, copy=False)
                placed.append({"dst": lib_path, "src": target})
    except (Collision, OSError) as e:
        # Take back only what this attempt placed; the library copies are intact.
        for m in placed:
            if os.path.samefile(m["src"], m["dst"]) or _sha(m["src"]) == _sha(m["dst"]):
                os.unlink(m["src"])
        res.skipped.append(f"{photo['original_path']}: could not move back ({e})")
        return
    for path, data in restore:
        # A sidecar that went back is restored where it now lies: its library
        # name is about to go.
        _restore_bytes(moved_back.get(path, path), data)
    for path in remove:
        os.unlink(path)
        res.removed.append(path)
    for m in placed:
        os.unlink(m["dst"])
        fsync_dir(os.path.dirname(m["dst"]))
    for m in moves:
        if m["copy"] and os.path.lexists(m["dst"]):
            if _sha(m["src"]) is not None and _sha(m["src"]) == _sha(m["dst"]):
                os.unlink(m["dst"])
                res.removed.append(m["dst"])
            else:
                res.kept.append(f"{m['dst']}: its original {m['src']} is not in place with the same bytes; kept")

    # 4. The database: the photo is back where it came from.
    now = time.time()
    # Durable: the photo is back in the inbox, and a power cut must not
    # bring back a journal that says it is in the library.
    with durably(db), transaction(db):
        db.execute("DELETE FROM moves WHERE photo_id = ?", (photo_id,))
        db.execute("DELETE FROM artifacts WHERE photo_id = ?", (photo_id,))
        db.execute("DELETE FROM seen WHERE photo_id = ?", (photo_id,))
        photos.undone(db, photo_id, now)
        events.add(db, "INFO", f"undo: {photo['original_path']} is back in its place", now)
    res.restored.append(photo["original_path"])
    echo(f"restored {photo['original_path']}")


def _old_place(lib_path: str, photo: dict, moves: list[dict]) -> str | None:
    """Where a sidecar starsort created in the library would lie next to the restored photo."""
    primary = next((m for m in moves if m["role"] == "primary"), None)
    if primary is None:
        return None  # rate-in-place: the sidecar already lies next to its photo
    new_stem = Path(primary["dst"]).stem
    old_stem = Path(primary["src"]).stem
    name = os.path.basename(lib_path)
    if not name.startswith(new_stem):
        return None
    return os.path.join(os.path.dirname(primary["src"]), old_stem + name[len(new_stem):])


def _restore_bytes(path: str, data: bytes) -> None:
    """Put a merged-into sidecar's original bytes back, through a temp file and a rename."""
    folder = os.path.dirname(path)
    tmp = temp_path(folder)
    mode = os.stat(path).st_mode & 0o7777
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(folder)
