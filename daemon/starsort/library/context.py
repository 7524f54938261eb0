"""What every outcome needs: the config, the writer, the journal, and where the library is.

The outcomes (`library.outcomes`), the ratings (`library.ratings`) and
recovery are functions of a `Library`, not methods of the service's loop:
the loop calls them, and so can anything else that decides about a photo
(a test, a one-off sort, a review page's override), with the same journal
and the same guarantees.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlite_utils import Database

from ..analysis import filetype
from ..config import Config
from ..store import events, photos, seen
from ..store.db import Writer
from .journal import Filer

log = logging.getLogger("starsort.library")


@dataclass
class Library:
    cfg: Config
    writer: Writer
    # --once (and `sort`): a filing that cannot happen now fails instead of
    # waiting for a retry that this run will not make.
    once: bool = False
    # When a photo that could not be filed (or read) may be tried again
    # (time.monotonic()); the loop's dispatch skips it until then.
    retry_at: dict[int, float] = field(default_factory=dict)
    # Quarantined photos that changed but cannot go back (their old name is
    # taken again): said once, not at every rescan.
    stuck_in_quarantine: set[int] = field(default_factory=set)
    # Grouping's people in memory (store.people.PeopleCache), made by library.people on first use.
    people_cache: Any = None
    filer: Filer = field(init=False)

    def __post_init__(self) -> None:
        self.filer = Filer(self.call, self.root)

    @property
    def root(self) -> Path:
        return Path(self.cfg.library)

    @property
    def in_place(self) -> bool:
        return self.cfg.mode == "rate-in-place"

    @property
    def copy(self) -> bool:
        # rate-in-place keeps the originals where they are, as copy mode does,
        # so it shares copy mode's "seen" bookkeeping.
        return self.cfg.mode in ("copy", "rate-in-place")

    def call(self, fn: Callable[[Database], Any]) -> Any:
        return self.writer.call(fn)

    def photo(self, photo_id: int) -> dict:
        return self.call(lambda db: photos.get(db, photo_id))

    def remember(self, photo_id: int, files: list[str]) -> None:
        """Record files that stay where they are as seen, so the next rescan
        does not take them for new photos (copy and rate-in-place modes)."""
        def remember(db: Database) -> None:
            for f in files:
                try:
                    st = os.stat(f)
                except FileNotFoundError:
                    continue
                seen.remember(db, f, st, photo_id)
        self.call(remember)

    def event(self, level: str, message: str) -> None:
        message = filetype.printable(message)  # `status` prints it on one line
        getattr(log, level.lower())(message)
        now = time.time()
        self.writer.submit(lambda db: events.add(db, level, message, now))
