"""Desktop notifications: on changes only, never a stream.

    a problem raised      "starsort: library full" / "14 photos waiting"
    a problem cleared     "starsort: library full — cleared"
    a shoot drained       "starsort: 132 photos filed" / "5★ 40, 4★ 51, …, 3 quarantined"

`Notices.see` is fed the service's brief status (store.health.brief) every
few seconds and decides; `Desktop` shows what it decided. Each kind (one
problem, or the drained shoot) is shown at most once per
`notifications.min_interval_seconds`: a change inside that time is kept and
shown when it is over, if it still stands, so a flapping disk gives two
notifications, not forty, and the last word is always the true one.

Sent through desktop-notifier (the freedesktop notification service over
D-Bus on Linux, the notification centre on macOS), so the service runs no
program for it; and only when a session bus is reachable (Linux), never from
a headless machine.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("starsort.service")


# What the photographer can do about each problem (store.health's kinds).
WHAT_TO_DO = {
    "library full": "Free space on the library's disk: filing resumes by itself.",
    "library missing": "Mount its disk: filing resumes by itself.",
    "cannot file": "Check the library's permissions: filing is retried.",
    "quarantines": "Check the card, the reader or the camera.",
}


@dataclass(frozen=True)
class Notice:
    kind: str
    title: str
    body: str
    urgent: bool = False


def session_bus() -> bool:
    """Whether a desktop session's bus is reachable (Linux); always True on macOS."""
    if sys.platform == "darwin":
        return True
    addr = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if addr:
        if addr.startswith("unix:path="):
            return os.path.exists(addr.split("=", 1)[1].split(",", 1)[0])
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return bool(runtime) and os.path.exists(os.path.join(runtime, "bus"))


class Desktop:
    """Shows a Notice on this desktop, through desktop-notifier (D-Bus on Linux, the
    notification centre on macOS): the service talks to the desktop's notification daemon
    itself, and runs no program to do it."""

    def __init__(self) -> None:
        self._notifier = None
        self._failed = False
        try:
            import desktop_notifier  # noqa: F401 - only whether it is installed
            self.tool = "desktop-notifier"
        except ImportError:
            self.tool = None

    @property
    def available(self) -> bool:
        return bool(self.tool) and session_bus()

    def show(self, n: Notice) -> bool:
        if self.tool is None:
            return False
        try:
            from importlib import resources

            from desktop_notifier import Icon, Urgency
            from desktop_notifier.sync import DesktopNotifierSync
            if self._notifier is None:
                icon = Icon(path=resources.files(__package__).joinpath("resources", "starsort.png"))
                self._notifier = DesktopNotifierSync(app_name="starsort", app_icon=icon)
            self._notifier.send(title=n.title, message=n.body,
                                urgency=Urgency.Critical if n.urgent else Urgency.Normal)
        except Exception as e:  # noqa: BLE001 - a desktop that cannot show it costs the notification only
            if not self._failed:
                log.info("desktop notification not shown (%s: %s): %s: %s", type(e).__name__, e, n.title, n.body)
                self._failed = True
            return False
        return True


class Notices:
    """Turns successive brief statuses into the notifications worth showing."""

    def __init__(self, min_interval: float, show: Callable[[Notice], object],
                 drained_summary: Callable[[float], dict] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.min_interval = min_interval
        self._show = show
        self._drained_summary = drained_summary
        self._clock = clock
        self._problems: dict[str, str] | None = None   # kind -> line, as last seen
        self._shown: dict[str, bool] = {}              # kind -> raised (True) or cleared (False), as last shown
        self._last_shown: dict[str, float] = {}
        self._held: dict[str, Notice] = {}             # the newest change of a kind inside its interval
        self._busy_since: float | None = None          # wall clock: when the queue last went from empty to busy

    def see(self, status: dict) -> None:
        now_wall = time.time()
        kinds = status.get("problem_kinds") or []
        current = dict(zip(kinds, status.get("problems") or []))
        if self._problems is None:
            # The first look is the state at start: a problem that already stood
            # is raised once; nothing is "cleared" that was never shown.
            self._problems = {}
        for kind, text in current.items():
            if kind not in self._problems:
                self._offer(Notice(kind, f"starsort: {kind}", f"{text}. {WHAT_TO_DO.get(kind, '')}".strip(),
                                   urgent=True))
        for kind in self._problems:
            if kind not in current:
                self._offer(Notice(kind, f"starsort: {kind} — cleared", "filing goes on"))
        self._problems = current

        queued = status.get("queue_depth") or 0
        if queued and not status.get("paused"):
            if self._busy_since is None:
                self._busy_since = now_wall - 1.0
        elif not queued and self._busy_since is not None:
            since, self._busy_since = self._busy_since, None
            if self._drained_summary is not None:
                n = self._drained(self._drained_summary(since))
                if n is not None:
                    self._offer(n)
        self._release()

    @staticmethod
    def _drained(s: dict) -> Notice | None:
        filed = sum(s.get("stars", {}).values())
        quarantined = s.get("quarantined", 0)
        if not filed and not quarantined:
            return None
        parts = [f"{k}★ {v}" for k, v in sorted(s.get("stars", {}).items(), reverse=True) if v]
        if quarantined:
            parts.append(f"{quarantined} quarantined")
        return Notice("drained", f"starsort: {filed:,} photo{'s' if filed != 1 else ''} filed", ", ".join(parts))

    def _offer(self, n: Notice) -> None:
        self._held[n.kind] = n
        self._release()

    def _release(self) -> None:
        now = self._clock()
        for kind, n in list(self._held.items()):
            last = self._last_shown.get(kind)
            if last is not None and now - last < self.min_interval:
                continue
            del self._held[kind]
            raised = not n.title.endswith("cleared")
            if kind != "drained" and self._shown.get(kind, False) == raised:
                continue      # it flapped back inside the interval: nothing changed since last shown
            self._last_shown[kind] = now
            if kind != "drained":
                self._shown[kind] = raised
            self._show(n)
