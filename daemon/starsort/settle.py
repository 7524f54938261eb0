"""Settle: a path in the inbox table becomes a queued photo once it stops changing.

Watchers fire when a write *starts* (watchdog #586), and tethering software
and card readers take seconds to write a file. A file is ready when its size
and mtime have not changed for `settle_seconds`. An empty file gets a longer
window, because a copy often creates the name first and fills it later.

When a file is ready it joins a photo:
* a RAW and a JPEG with the same stem in the same folder (exactly one of
  each, nomacs #1587) are one photo, the raw its `original_path`;
* if the partner is still being written, the ready one waits for it;
* if the partner was already filed, the newcomer follows it into its folder;
* XMP sidecars are not photos: they travel with theirs at filing time.
"""
from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass

from sqlite_utils import Database

from . import filetype
from .filing import photo_stem

log = logging.getLogger(__name__)

EMPTY_FILE_GRACE = 5.0
# A lone raw or JPEG joins an already-filed partner only if that partner was
# queued this recently: a camera's file counter wraps, and DSC00042 a month
# later is a different photo.
FOLLOW_WINDOW = 600.0


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
            db.execute("UPDATE inbox SET size = ?, mtime_ns = ?, stable_since = ? WHERE path = ?",
                       (st.st_size, st.st_mtime_ns, now, path))
            waiting += 1
            continue
        window = settle_seconds if st.st_size else max(settle_seconds, EMPTY_FILE_GRACE)
        if now - row["stable_since"] >= window:
            ready.append(Ready(path, st.st_size, st.st_mtime_ns))
        else:
            waiting += 1
    return ready, waiting


# ---- admission -------------------------------------------------------------------

ACTIVE = ("queued", "analysed", "filing", "failed")


def _siblings(path: str) -> tuple[list[str], list[str]]:
    """Raw and JPEG files in path's folder with the same stem (case-insensitive)."""
    folder = os.path.dirname(path)
    stem = photo_stem(path).casefold()
    raws, jpegs = [], []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.startswith(".") or not e.is_file(follow_symlinks=False):
                    continue
                if os.path.splitext(e.name)[0].casefold() != stem:
                    continue
                k = filetype.ext_kind(e.name)
                if k == "raw":
                    raws.append(e.path)
                elif k == "jpeg":
                    jpegs.append(e.path)
    except FileNotFoundError:
        pass
    return sorted(raws), sorted(jpegs)


def _photo_of(db: Database, path: str, states: tuple[str, ...]) -> dict | None:
    marks = ",".join("?" * len(states))
    rows = list(db.query(
        f"SELECT * FROM photos WHERE (original_path = ? OR pair_original_path = ?) AND state IN ({marks})"
        " ORDER BY id DESC LIMIT 1", [path, path, *states]))
    return rows[0] if rows else None


def admit(db: Database, ready: list[Ready], copy_mode: bool, now: float | None = None) -> list[dict]:
    """Turn ready files into queued photos. Returns actions the service must carry out
    now (files that follow an already-filed photo, lone sidecars to quarantine)."""
    now = time.time() if now is None else now
    actions: list[dict] = []
    ready_paths = {r.path: r for r in ready}
    waiting = {r[0] for r in db.execute("SELECT path FROM inbox")} - set(ready_paths)
    for r in ready:
        path = r.path
        if path not in ready_paths:
            continue  # taken as the partner of an earlier one in this batch
        if copy_mode and db.execute(
                "SELECT 1 FROM seen WHERE path = ? AND size = ? AND mtime_ns = ?",
                (path, r.size, r.mtime_ns)).fetchone():
            _forget(db, path, ready_paths)
            continue
        known = _photo_of(db, path, ACTIVE)
        if known:
            if _replaced(known, path, r.size, r.mtime_ns):
                _requeue(db, known, r, now)
            _forget(db, path, ready_paths)
            continue
        kind = filetype.ext_kind(path)
        if kind == "sidecar":
            raws, jpegs = _siblings(path)
            if raws or jpegs:
                _forget(db, path, ready_paths)  # filing takes it along with its photo
                continue
            done = _filed_photo_with_stem(db, path)
            actions.append({"action": "follow" if done else "quarantine", "path": path,
                            "photo": done, "role": "sidecar",
                            "reason": "XMP sidecar with no photo next to it"})
            _forget(db, path, ready_paths)
            continue
        raws, jpegs = _siblings(path) if kind in ("raw", "jpeg") else ([], [])
        partner = None
        if len(raws) == 1 and len(jpegs) == 1 and path in raws + jpegs:
            partner = jpegs[0] if path == raws[0] else raws[0]
        if partner is None and kind in ("raw", "jpeg") and len(raws) + len(jpegs) == 1:
            # Alone on disk, but its partner may have been filed already
            # (tethering software writes the JPEG first, the raw seconds later).
            filed = _filed_photo_with_stem(db, path)
            if (filed and filed["pair_original_path"] is None and now - filed["queued_at"] <= FOLLOW_WINDOW
                    and filetype.ext_kind(filed["original_path"]) == ("jpeg" if kind == "raw" else "raw")):
                actions.append({"action": "follow", "path": path, "photo": filed, "role": "pair"})
                _forget(db, path, ready_paths)
                continue
        if partner is None:
            _queue(db, original=path, pair=None, kind=kind if kind != "sidecar" else "other",
                   size=r.size, mtime_ns=r.mtime_ns, now=now)
            _forget(db, path, ready_paths)
            continue
        if partner in waiting:
            continue  # the partner is still being written; both go together
        existing = _photo_of(db, partner, ("queued",))
        if existing and existing["pair_original_path"] is None:
            if kind == "raw":
                # The raw is the original; the JPEG it arrived after becomes its pair.
                db.execute("UPDATE photos SET original_path = ?, pair_original_path = ?, kind = 'raw',"
                           " size = ?, mtime_ns = ?, updated_at = ? WHERE id = ?",
                           (path, partner, r.size, r.mtime_ns, now, existing["id"]))
            else:
                db.execute("UPDATE photos SET pair_original_path = ?, updated_at = ? WHERE id = ?",
                           (path, now, existing["id"]))
            _forget(db, path, ready_paths)
            continue
        filed = _photo_of(db, partner, ("done",))
        if filed and filed["pair_original_path"] in (None, path):
            actions.append({"action": "follow", "path": path, "photo": filed, "role": "pair"})
            _forget(db, path, ready_paths)
            continue
        if partner in ready_paths:
            raw, jpeg = (path, partner) if kind == "raw" else (partner, path)
            pr = ready_paths[raw]
            _queue(db, original=raw, pair=jpeg, kind="raw", size=pr.size, mtime_ns=pr.mtime_ns, now=now)
            _forget(db, path, ready_paths)
            _forget(db, partner, ready_paths)
            continue
        # The partner is on disk but neither waiting nor known (not yet seen by
        # the watcher or scan): record it and wait one more round.
        record(db, partner, now)
    return actions


def _replaced(row: dict, path: str, size: int, mtime_ns: int) -> bool:
    """A failed photo's path now holds a different file (the old one was deleted, or re-exported).

    A failed photo blocks its path so that a file that keeps failing is not
    queued again by every scan; but that must not shut out a new file that
    later takes the same name (a camera counter, a fixed re-export)."""
    return (row["state"] == "failed" and row["original_path"] == path and not row["pair_original_path"]
            and (row["size"], row["mtime_ns"]) != (size, mtime_ns))


def _requeue(db: Database, row: dict, r: Ready, now: float) -> None:
    # The same row, not a new one: two rows for one path could file it twice.
    kind = filetype.ext_kind(r.path)
    db.execute("UPDATE photos SET state = 'queued', kind = ?, size = ?, mtime_ns = ?, attempts = 0, error = NULL,"
               " updated_at = ? WHERE id = ?",
               (kind if kind != "sidecar" else "other", r.size, r.mtime_ns, now, row["id"]))
    log.info("queued %s again: a new file took the name of failed photo %d", r.path, row["id"])


def _filed_photo_with_stem(db: Database, sidecar: str) -> dict | None:
    folder = os.path.dirname(sidecar)
    stem = photo_stem(sidecar).casefold()
    for row in db.query(
            "SELECT * FROM photos WHERE state = 'done' AND original_path LIKE ? ORDER BY id DESC",
            [folder + os.sep + "%"]):
        if os.path.dirname(row["original_path"]) == folder and photo_stem(row["original_path"]).casefold() == stem:
            return row
    return None


def _queue(db: Database, *, original: str, pair: str | None, kind: str,
           size: int, mtime_ns: int, now: float) -> None:
    db.execute(
        "INSERT INTO photos (original_path, pair_original_path, kind, state, size, mtime_ns, queued_at, updated_at)"
        " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
        (original, pair, kind, size, mtime_ns, now, now))
    log.info("queued %s%s", original, f" + {os.path.basename(pair)}" if pair else "")


def _forget(db: Database, path: str, ready_paths: dict) -> None:
    db.execute("DELETE FROM inbox WHERE path = ?", (path,))
    ready_paths.pop(path, None)


def rescan(db: Database, paths: list[str], copy_mode: bool, now: float | None = None) -> int:
    """Record scanned paths the database does not already track. Returns how many were new."""
    now = time.time() if now is None else now
    before = db.execute("SELECT count(*) FROM inbox").fetchone()[0]
    for p in paths:
        known = _photo_of(db, p, ACTIVE)
        if known:
            if known["state"] == "failed":
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                if _replaced(known, p, st.st_size, st.st_mtime_ns):
                    record(db, p, now)
            continue
        if not copy_mode:
            record(db, p, now)
            continue
        # In copy mode the originals stay put: skip the ones already filed.
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if db.execute("SELECT 1 FROM seen WHERE path = ? AND size = ? AND mtime_ns = ?",
                      (p, st.st_size, st.st_mtime_ns)).fetchone():
            continue
        record(db, p, now)
    return db.execute("SELECT count(*) FROM inbox").fetchone()[0] - before

