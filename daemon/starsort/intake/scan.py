"""Scanning: the inbox folders walked, and what a walk finds that the database does not track.

The watcher reports files as they land; a scan catches what it cannot:
files already there at start-up, files written while the service was
stopped, a folder moved in whole, and events lost to a full queue.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sqlite_utils import Database

from ..analysis import filetype
from ..config import Config, creates_inbox
from ..store.photos import ACTIVE
from .pairing import replaced
from . import watcher
from .settle import record

log = logging.getLogger(__name__)


def rescan(db: Database, paths: list[str], copy_mode: bool, now: float | None = None) -> int:
    """Record scanned paths the database does not already track. Returns how many were new.

    A set comparison, a few queries per scan whatever the number of files:
    an idle copy-mode inbox of 20,000 filed photos is rescanned every
    minute, and a query per file made that the service's main cost.
    """
    now = time.time() if now is None else now
    before = db.execute("SELECT count(*) FROM inbox").fetchone()[0]
    batch = json.dumps(paths)
    marks = ",".join("?" * len(ACTIVE))
    # The newest active photo of each path, as photos.by_path would pick it.
    active: dict[str, dict] = {}
    for row in db.query(
            f"SELECT j.value AS scanned, p.* FROM json_each(?) j JOIN photos p"
            f" ON (p.original_path = j.value OR p.pair_original_path = j.value) AND p.state IN ({marks})"
            " ORDER BY p.id", [batch, *ACTIVE]):
        active[row.pop("scanned")] = row
    waiting = {r[0] for r in db.execute("SELECT i.path FROM json_each(?) j JOIN inbox i ON i.path = j.value",
                                        [batch])}
    seen_keys: set[tuple[str, int, int]] = set()
    if copy_mode:
        seen_keys = {tuple(r) for r in db.execute(
            "SELECT s.path, s.size, s.mtime_ns FROM json_each(?) j JOIN seen s ON s.path = j.value", [batch])}
    for p in paths:
        if p in waiting:
            continue
        known = active.get(p)
        if known:
            if known["state"] == "failed":
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                if replaced(known, p, st.st_size, st.st_mtime_ns):
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
        if (p, st.st_size, st.st_mtime_ns) in seen_keys:
            continue
        record(db, p, now)
    return db.execute("SELECT count(*) FROM inbox").fetchone()[0] - before


class Scanner:
    """Walks the inboxes for the deciding thread: all of them every rescan_interval,
    and single folders the watcher asks for (a folder moved in whole)."""

    def __init__(self, cfg: Config, call: Callable[[Callable[[Database], Any]], Any], copy_mode: bool):
        self.cfg = cfg
        self.call = call
        self.copy_mode = copy_mode
        # `starsort sort --sample`: only these paths are taken from the inbox.
        self.only: set[str] | None = None
        self.last = 0.0
        self._requests: set[str] = set()
        self._lock = threading.Lock()
        self._missing: set[Path] = set()

    def request(self, folder: str) -> None:
        """From a watcher thread: scan this folder on the next turn of the loop."""
        with self._lock:
            self._requests.add(folder)

    def scan_requested(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, set()
        for folder in requests:
            self.scan(folder)

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.cfg.rescan_interval

    def scan_all(self) -> None:
        for inbox in self.cfg.inboxes:
            if creates_inbox(self.cfg):
                inbox.mkdir(parents=True, exist_ok=True)
            if not inbox.is_dir():
                if inbox not in self._missing:
                    self._missing.add(inbox)
                    log.warning("inbox %s does not exist (yet); waiting for it", inbox)
                continue
            if inbox in self._missing:
                self._missing.discard(inbox)
                log.info("inbox %s is here now; scanning it", inbox)
            self.scan(inbox)
        self.last = time.monotonic()

    def scan(self, folder: Path | str) -> None:
        library = Path(self.cfg.library)
        root = next((b for b in self.cfg.inboxes if str(folder).startswith(str(b))), Path(folder))
        paths = [p for p in watcher.walk(Path(folder), library) if not filetype.is_ignored(p, root)
                 and (self.only is None or p in self.only)]
        new = self.call(lambda db: rescan(db, paths, self.copy_mode))
        if new:
            log.info("scan of %s found %d new file(s)", folder, new)
