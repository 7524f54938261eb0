"""Intake: watchdog observers and the reconcile scan, both feeding the inbox table.

Events are hints, the scan is the truth. watchdog drops inotify queue
overflows silently and misses files in brand-new subfolders, so every inbox is
also walked at start-up and every `rescan_interval` seconds (Syncthing keeps
full scans on for the same reason).

The handler runs on watchdog's dispatch thread, and an exception there kills
that thread for good (watchdog #427), so it does one thing: hand the path to
the database writer, inside a try that logs and swallows.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Iterator

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from ..analysis import filetype

log = logging.getLogger(__name__)


def walk(root: Path, library: Path) -> Iterator[str]:
    """Every regular file under `root` that intake should take, without following symlinks."""
    lib = os.path.realpath(library)
    stack = [str(root)]
    while stack:
        d = stack.pop()
        if os.path.realpath(d) == lib:
            continue
        try:
            entries = list(os.scandir(d))
        except PermissionError:
            # watchdog skips unreadable folders silently; say so here.
            log.warning("cannot read folder %s: permission denied", d)
            continue
        except FileNotFoundError:
            continue
        for e in entries:
            if filetype.is_ignored(e.path, root):
                if _not_utf8(e.path):
                    log.warning("skipping %r: its name is not valid UTF-8; rename it to have it filed", e.path)
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    yield e.path
            except OSError:
                continue


def _not_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


class InboxHandler(FileSystemEventHandler):
    """Turns watchdog events into `record(path)` / `rescan(folder)` calls; never raises."""

    def __init__(self, root: Path, library: Path,
                 record: Callable[[str], None], rescan: Callable[[str], None],
                 closed: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.library = os.path.realpath(library)
        self.record = record
        self.rescan = rescan
        # inotify's close-after-write, where the platform has it: a hint that
        # the writer is done with the file (never the only one: a writer may
        # reopen, and other platforms and polling never send it).
        self.closed = closed

    def _take(self, path: str, closed: bool = False) -> None:
        if not path or filetype.is_ignored(path, self.root):
            return
        if os.path.realpath(path).startswith(self.library + os.sep):
            return
        self.record(path)
        if closed and self.closed is not None:
            self.closed(path)

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            if event.event_type in ("deleted", "closed_no_write", "opened"):
                return
            if isinstance(event, (DirCreatedEvent, DirMovedEvent)):
                # A folder that appears (card copy, mkdir -p + fast writes)
                # may already hold files whose events came before the watch.
                target = getattr(event, "dest_path", "") or event.src_path
                if target and not filetype.is_ignored(target, self.root):
                    self.rescan(os.fsdecode(target))
                return
            if event.is_directory:
                return
            path = getattr(event, "dest_path", "") or event.src_path
            self._take(os.fsdecode(path), closed=event.event_type == "closed")
        except Exception:  # noqa: BLE001 - see module docstring
            log.exception("watch event for %r could not be recorded", getattr(event, "src_path", "?"))


NETWORK_FILESYSTEMS = frozenset({"cifs", "smb3", "smbfs", "nfs", "nfs4", "fuse.sshfs", "9p", "afpfs"})


def filesystem_type(path: Path) -> str | None:
    """The filesystem type of the mount holding `path`, from /proc/self/mountinfo (Linux)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, fstype = "", None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount = fields[4].replace("\\040", " ")
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, fstype = mount, right.split()[0]
    return fstype


class Watcher:
    """One recursive observer per inbox; restarts a dead one, falls back to polling."""

    def __init__(self, inboxes: list[Path], library: Path,
                 record: Callable[[str], None], rescan: Callable[[str], None],
                 closed: Callable[[str], None] | None = None, create: bool = True):
        self.inboxes = [Path(p) for p in inboxes]
        self.library = library
        self.record = record
        self.rescan = rescan
        self.closed = closed
        # False for configured inboxes: a missing one is an unmounted card or
        # share, and creating it would have files land on the wrong disk.
        self.create = create
        self.observers: dict[Path, object] = {}

    def _start_one(self, inbox: Path) -> None:
        handler = InboxHandler(inbox, self.library, self.record, self.rescan, self.closed)
        fstype = filesystem_type(inbox)
        if fstype in NETWORK_FILESYSTEMS:
            # inotify never hears about writes made by another machine
            # (watchdog README, "About using watchdog with CIFS").
            log.info("%s is on %s: polling it instead of using inotify", inbox, fstype)
            obs = PollingObserver(timeout=2.0)
            obs.schedule(handler, str(inbox), recursive=True)
            obs.start()
            self.observers[inbox] = obs
            return
        obs = Observer()
        try:
            obs.schedule(handler, str(inbox), recursive=True)
            obs.start()
        except OSError as e:
            # ENOSPC / EMFILE: the per-user inotify limits (watchdog #673, #846).
            log.error(
                "cannot watch %s (%s); falling back to polling. Raise the limit with "
                "`sysctl fs.inotify.max_user_watches=524288` (and max_user_instances).",
                inbox, e)
            obs = PollingObserver(timeout=max(2.0, 1.0))
            obs.schedule(handler, str(inbox), recursive=True)
            obs.start()
        self.observers[inbox] = obs

    def start(self) -> None:
        for inbox in self.inboxes:
            if self.create:
                inbox.mkdir(parents=True, exist_ok=True)
            if inbox.is_dir():
                self._start_one(inbox)
        log.info("watching %s", ", ".join(str(p) for p in self.observers) or "nothing yet")

    def check(self) -> None:
        """Restart observers that died (an inbox unmounted, a handler bug); start
        watching an inbox that has appeared (a card inserted, a share mounted)."""
        for inbox in self.inboxes:
            obs = self.observers.get(inbox)
            if obs is not None and obs.is_alive():
                continue
            if obs is not None:
                log.warning("observer for %s stopped; restarting it and rescanning", inbox)
            try:
                if self.create:
                    inbox.mkdir(parents=True, exist_ok=True)
                if not inbox.is_dir():
                    self.observers.pop(inbox, None)
                    continue
                if obs is None:
                    log.info("inbox %s appeared; watching it", inbox)
                self._start_one(inbox)
                self.rescan(str(inbox))
            except OSError as e:
                log.error("cannot watch %s: %s", inbox, e)

    def stop(self) -> None:
        for obs in self.observers.values():
            obs.stop()
        for obs in self.observers.values():
            obs.join(timeout=5)
        self.observers.clear()

