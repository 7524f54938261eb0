"""`starsort sort SRC`: sort an existing folder once, without the service running.

Seed 000 (ImageClusterBlur) is a batch program: point it at a folder, it
takes a random sample of 20 photos, rates them and moves them into star
folders. This is that, built from the service itself rather than beside it:
`Service(once=True)` with SRC as its only inbox, so a sorted folder goes
through the same pipeline, journal, crash recovery and database as photos
the daemon files, and `starsort report` and `starsort undo` see both.

* Sampling draws photos, not files: a RAW+JPEG pair and its sidecars are one
  photo, kept or left together, so a sample never splits a pair. The draw is
  `random.Random(seed).sample` over the photos sorted by path, so a seed
  gives the same sample of the same folder on any machine.
* Files are already complete, so nothing waits to settle (settle_seconds 0).
* Progress comes from the database (photos of this run reaching done,
  quarantined or failed), polled from a thread; the service itself is not
  told about the progress bar.
"""
from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import filetype, watcher
from .config import Config
from .filing import photo_stem

FINISHED = ("done", "quarantined", "failed")


@dataclass
class Selection:
    """The photos of a folder (each a list of its files), and the files chosen."""
    photos: list[list[str]]
    chosen: list[list[str]]
    others: list[str] = field(default_factory=list)   # neither photo nor sidecar: quarantined when sorted

    @property
    def paths(self) -> set[str]:
        return {p for files in self.chosen for p in files}


def select(src: Path, library: Path, sample: int | None = None, seed: int | None = None) -> Selection:
    """Group SRC's files into photos (same folder and stem) and draw `sample` of them."""
    groups: dict[tuple[str, str], list[str]] = {}
    sidecars: list[str] = []
    others: list[str] = []
    for p in sorted(watcher.walk(src, library)):
        if filetype.is_ignored(p, src):
            continue
        kind = filetype.ext_kind(p)
        key = (os.path.dirname(p), photo_stem(p).casefold())
        if kind in ("raw", "jpeg"):
            groups.setdefault(key, []).append(p)
        elif kind == "sidecar":
            sidecars.append(p)
        else:
            others.append(p)
    lone_sidecars = []
    for s in sidecars:
        key = (os.path.dirname(s), photo_stem(s).casefold())
        if key in groups:
            groups[key].append(s)
        else:
            lone_sidecars.append(s)
    photos = [groups[k] for k in sorted(groups)]
    if sample is None or sample >= len(photos):
        # The whole folder, as the service would take it.
        return Selection(photos, photos, others + lone_sidecars)
    chosen = random.Random(seed).sample(photos, sample)
    return Selection(photos, sorted(chosen), [])


def sort_config(cfg: Config, src: Path, library: Path | None) -> Config:
    from . import paths
    update = {"inboxes": [paths.expand(src)], "settle_seconds": 0.0}
    if library is not None:
        update["library"] = paths.expand(library)
    return cfg.model_copy(update=update)


def watch_progress(database: Path, since: float, stop: threading.Event,
                   on_photo: Callable[[dict], None], interval: float = 0.3) -> threading.Thread:
    """Call `on_photo(row)` once for each photo that finishes after `since`, until `stop` is set."""

    def poll() -> None:
        reported: set[int] = set()
        conn = None
        while True:
            last_round = stop.is_set()
            if conn is None and Path(database).exists():
                conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10, check_same_thread=False)
                conn.row_factory = sqlite3.Row
            if conn is not None:
                try:
                    rows = conn.execute(
                        "SELECT id, original_path, current_path, state, stars, error FROM photos"
                        f" WHERE queued_at >= ? AND state IN ({','.join('?' * len(FINISHED))}) ORDER BY id",
                        (since, *FINISHED)).fetchall()
                except sqlite3.OperationalError:
                    rows = []  # the schema is being created
                for r in rows:
                    if r["id"] not in reported:
                        reported.add(r["id"])
                        on_photo(dict(r))
            if last_round:
                break
            stop.wait(interval)
        if conn is not None:
            conn.close()

    t = threading.Thread(target=poll, name="starsort-progress", daemon=True)
    t.start()
    return t


def run_started_at() -> float:
    # queued_at is written with time.time() by the service; a little slack
    # for a clock that steps backwards between here and there.
    return time.time() - 1.0
