"""Pairing: settled files become photos, by the rules of admission and following.

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
import time

from sqlite_utils import Database

from ..analysis import filetype
from ..library.names import photo_stem
from ..store import photos, seen
from ..store.photos import ACTIVE
from .settle import Ready, record

log = logging.getLogger(__name__)

# A lone raw or JPEG joins an already-filed partner only if that partner was
# queued this recently: a camera's file counter wraps, and DSC00042 a month
# later is a different photo.
FOLLOW_WINDOW = 600.0


class _Folders:
    """The raw and JPEG files of each folder, by stem, listed once per admission round.

    Once per round, not once per file: a card's folder holds up to 9,999
    files, and listing it for every file admitted made admitting a card
    quadratic (25 ms a file at 10,000). Within one round the answer for a
    stem does not change in a way that matters: a partner that lands after
    the listing is admitted in the next round.
    """

    def __init__(self) -> None:
        self._stems: dict[str, dict[str, tuple[list[str], list[str]]]] = {}

    def siblings(self, path: str) -> tuple[list[str], list[str]]:
        """Raw and JPEG files in path's folder with the same stem (case-insensitive)."""
        folder = os.path.dirname(path)
        if folder not in self._stems:
            self._stems[folder] = self._list(folder)
        raws, jpegs = self._stems[folder].get(photo_stem(path).casefold(), ([], []))
        return sorted(raws), sorted(jpegs)

    @staticmethod
    def _list(folder: str) -> dict[str, tuple[list[str], list[str]]]:
        stems: dict[str, tuple[list[str], list[str]]] = {}
        try:
            with os.scandir(folder) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    k = filetype.ext_kind(e.name)
                    if k not in ("raw", "jpeg") or not e.is_file(follow_symlinks=False):
                        continue
                    raws, jpegs = stems.setdefault(os.path.splitext(e.name)[0].casefold(), ([], []))
                    (raws if k == "raw" else jpegs).append(e.path)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return stems


def admit(db: Database, ready: list[Ready], copy_mode: bool, now: float | None = None) -> list[dict]:
    """Turn ready files into queued photos. Returns actions the service must carry out
    now (files that follow an already-filed photo, lone sidecars to quarantine)."""
    now = time.time() if now is None else now
    actions: list[dict] = []
    ready_paths = {r.path: r for r in ready}
    folders = _Folders()
    waiting = {r[0] for r in db.execute("SELECT path FROM inbox")} - set(ready_paths)
    for r in ready:
        path = r.path
        if path not in ready_paths:
            continue  # taken as the partner of an earlier one in this batch
        if copy_mode and seen.known(db, path, r.size, r.mtime_ns):
            _forget(db, path, ready_paths)
            continue
        known = photos.by_path(db, path, ACTIVE)
        if known:
            if replaced(known, path, r.size, r.mtime_ns):
                _requeue(db, known, r, now)
            _forget(db, path, ready_paths)
            continue
        kind = filetype.ext_kind(path)
        if kind == "sidecar":
            raws, jpegs = folders.siblings(path)
            if raws or jpegs:
                _forget(db, path, ready_paths)  # filing takes it along with its photo
                continue
            done = _filed_photo_with_stem(db, path)
            actions.append({"action": "follow" if done else "quarantine", "path": path,
                            "photo": done, "role": "sidecar",
                            "reason": "XMP sidecar with no photo next to it"})
            _forget(db, path, ready_paths)
            continue
        raws, jpegs = folders.siblings(path) if kind in ("raw", "jpeg") else ([], [])
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
            photos.queue(db, original=path, pair=None, kind=kind if kind != "sidecar" else "other",
                         size=r.size, mtime_ns=r.mtime_ns, now=now)
            _forget(db, path, ready_paths)
            continue
        if partner in waiting:
            continue  # the partner is still being written; both go together
        existing = photos.by_path(db, partner, ("queued",))
        if existing and existing["pair_original_path"] is None:
            if kind == "raw":
                # The raw is the original; the JPEG it arrived after becomes its pair.
                photos.raw_joins_jpeg(db, existing["id"], raw=path, jpeg=partner, size=r.size,
                                      mtime_ns=r.mtime_ns, now=now)
            else:
                photos.jpeg_joins_raw(db, existing["id"], path, now)
            _forget(db, path, ready_paths)
            continue
        filed = photos.by_path(db, partner, ("done",))
        if filed and filed["pair_original_path"] in (None, path):
            actions.append({"action": "follow", "path": path, "photo": filed, "role": "pair"})
            _forget(db, path, ready_paths)
            continue
        if partner in ready_paths:
            raw, jpeg = (path, partner) if kind == "raw" else (partner, path)
            pr = ready_paths[raw]
            photos.queue(db, original=raw, pair=jpeg, kind="raw", size=pr.size, mtime_ns=pr.mtime_ns, now=now)
            _forget(db, path, ready_paths)
            _forget(db, partner, ready_paths)
            continue
        # The partner is on disk but neither waiting nor known (not yet seen by
        # the watcher or scan): record it and wait one more round.
        record(db, partner, now)
    return actions


def replaced(row: dict, path: str, size: int, mtime_ns: int) -> bool:
    """A failed photo's path now holds a different file (the old one was deleted, or re-exported).

    A failed photo blocks its path so that a file that keeps failing is not
    queued again by every scan; but that must not shut out a new file that
    later takes the same name (a camera counter, a fixed re-export)."""
    return (row["state"] == "failed" and row["original_path"] == path and not row["pair_original_path"]
            and (row["size"], row["mtime_ns"]) != (size, mtime_ns))


def _requeue(db: Database, row: dict, r: Ready, now: float) -> None:
    # The same row, not a new one: two rows for one path could file it twice.
    kind = filetype.ext_kind(r.path)
    photos.requeue_replaced(db, row["id"], kind=kind if kind != "sidecar" else "other", size=r.size,
                            mtime_ns=r.mtime_ns, now=now)
    log.info("queued %s again: a new file took the name of failed photo %d", r.path, row["id"])


def _filed_photo_with_stem(db: Database, path: str) -> dict | None:
    """The newest filed photo whose original had this file's folder and stem (in any case)."""
    folder = os.path.dirname(path)
    stem = photo_stem(path)
    return photos.filed_with_stem(db, folder, stem)


def _forget(db: Database, path: str, ready_paths: dict) -> None:
    db.execute("DELETE FROM inbox WHERE path = ?", (path,))
    ready_paths.pop(path, None)


