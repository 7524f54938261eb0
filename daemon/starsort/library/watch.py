"""The library's folders are an interface too: a photo dragged from `5-stars/` to `3-stars/` in
a file manager is the photographer's decision.

A watchdog observer on the library reports renames between its star folders
(and into `rejected/`); once the library is quiet, each becomes a request for
the deciding thread (`overrides.moved_by_hand`), which carries the RAW or
JPEG partner and the sidecars along and rewrites the rating. starsort's own moves are links and
unlinks, never renames, so they are not mistaken for the photographer's.
Moves made while starsort was stopped are found at the next start
(`overrides.moved_while_stopped`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from watchdog.events import FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .names import REJECTED, TEMP_PREFIX, stars_of_folder

log = logging.getLogger("starsort.library")


def decision_folder(folder: str, root: str) -> bool:
    """A star folder or `rejected/`, directly in the library."""
    return os.path.dirname(folder) == root and (
        stars_of_folder(os.path.basename(folder)) is not None or os.path.basename(folder) == REJECTED)


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, moved: Callable[[str, str], None]):
        self.real = os.path.realpath(root)
        self.root = str(root)
        self.moved = moved

    def _as_configured(self, path: str) -> str:
        # The database names files under the library as configured, which
        # may reach it through a symlink; the events name the real path.
        return self.root + path[len(self.real):] if path.startswith(self.real + os.sep) else path

    def on_moved(self, event: FileSystemEvent) -> None:
        try:
            if not isinstance(event, FileMovedEvent):
                return
            src = self._as_configured(os.fsdecode(event.src_path))
            dst = self._as_configured(os.fsdecode(event.dest_path))
            if os.path.basename(src).startswith((TEMP_PREFIX, ".")):
                return                  # a sidecar rewritten through a temp file
            a, b = os.path.dirname(src), os.path.dirname(dst)
            if a != b and decision_folder(a, self.root) and decision_folder(b, self.root):
                self.moved(src, dst)
        except Exception:  # noqa: BLE001 - a handler that raises kills watchdog's thread for good
            log.exception("library move event for %r could not be handled", getattr(event, "src_path", "?"))


# A file manager moves a selection (the RAW, its JPEG, the sidecar, a hundred
# photos) one rename at a time. Acting on the first rename at once would move
# the rest behind its back, and it would then fail on files already gone; so
# the moves are taken once the library has been quiet this long.
QUIET_SECONDS = 1.5


class LibraryWatch:
    def __init__(self, root: Path, quiet: float = QUIET_SECONDS):
        self.root = Path(root)
        self.quiet = quiet
        self.observer: Observer | None = None
        self._lock = threading.Lock()
        self._moves: list[tuple[str, str]] = []
        self._last = 0.0

    def _moved(self, src: str, dst: str) -> None:
        with self._lock:
            self._moves.append((src, dst))
            self._last = time.monotonic()

    def settled(self) -> list[tuple[str, str]]:
        """The moves seen so far, once no move has come for `quiet` seconds; else none yet."""
        with self._lock:
            if not self._moves or time.monotonic() - self._last < self.quiet:
                return []
            moves, self._moves = self._moves, []
            return moves

    def start(self) -> None:
        if not self.root.is_dir():
            return
        obs = Observer()
        # Watched at its real path: events then name the folders as the
        # library's rows do after realpath.
        obs.schedule(_Handler(self.root, self._moved), os.path.realpath(self.root), recursive=True)
        try:
            obs.start()
        except OSError as e:
            log.warning("cannot watch the library for moves made by hand (%s); they are found at the next start", e)
            return
        self.observer = obs

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
