"""The tray icon: the service's state at a glance, and the few actions a shoot needs.

    state    icon                           tooltip
    idle     green                          "idle · 1,204 filed today"
    working  amber, with the queue count    "12 queued · 6.1 photos/s"
    paused   grey, with a pause sign        "intake paused"
    error    red, with "!"                  the problem, e.g. "library full: 14 photos waiting"
    down     grey, crossed out              the service is not answering, or its heartbeat is stale

The state and the line come from the service (`/api/status`: store.health),
so the tray, `starsort status` and systemd's STATUS= always say the same.

Menu: Open review page (also the default action: a click on the icon, all
that pystray's xorg backend offers), the status line, Pause/Resume intake,
Open library, Open inbox, Show last error, Quit tray (the service keeps
running). Each change of state is also written to the tray's log (stderr),
one line, so a terminal or a test can follow it.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from . import icons
from .client import Client, Down

log = logging.getLogger("starsort.tray")

POLL_SECONDS = 2.0


class NoDesktop(RuntimeError):
    """There is no desktop session to show a tray icon in."""


def load_pystray() -> Any:
    """pystray, with the backend PYSTRAY_BACKEND names (else its own choice), or NoDesktop."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDesktop("no desktop session: DISPLAY is not set (the tray runs in your desktop session, "
                        "not over ssh or from a service)")
    try:
        import pystray
    except ImportError as e:
        raise NoDesktop(f"pystray is not installed ({e}): run `make install-tray`") from e
    except Exception as e:  # noqa: BLE001 - a backend that cannot start raises anything (Xlib, gi)
        raise NoDesktop(f"the tray cannot start on this desktop: {type(e).__name__}: {e}") from e
    return pystray


def _open(target: str) -> None:
    """Open a folder or an address with the desktop's own handler."""
    if sys.platform == "darwin":
        cmd = ["open", target]
    elif sys.platform.startswith("win"):
        os.startfile(target)  # type: ignore[attr-defined]  # noqa: S606
        return
    else:
        cmd = ["xdg-open", target]
    try:
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        log.warning("cannot open %s: %s", target, e)


def _name_the_process() -> None:
    # GTK names the icon's window after argv[0] ("__main__.py") unless told:
    # tray hosts and window lists show this name.
    if "gi" not in sys.modules:
        return
    try:
        from gi.repository import GLib
        GLib.set_prgname("starsort")
        GLib.set_application_name("starsort")
    except Exception:  # noqa: BLE001 - a cosmetic name is never worth failing for
        pass


class Tray:
    def __init__(self, client: Client, library: Path, inbox: Path, poll: float = POLL_SECONDS):
        self.client = client
        self.library = library
        self.inbox = inbox
        self.poll_seconds = poll
        self.stop = threading.Event()
        self.status: dict | None = None
        self.state = "down"
        self.line = "connecting to the service …"
        self._shown: tuple | None = None
        self.icon: Any = None

    # ---- what the service says --------------------------------------------------

    def poll(self) -> None:
        try:
            s = self.client.status()
        except Down as e:
            self.status, self.state, self.line = None, "down", f"starsort is not running: {e}"
        else:
            self.status = s
            self.state = s.get("state") or ("down" if not s.get("running") else "idle")
            self.line = s.get("line") or self.state
            if self.state == "down":
                self.line = "starsort is not running (no recent heartbeat)"
        self._show()

    def _show(self) -> None:
        queued = (self.status or {}).get("queue_depth") or 0
        key = (self.state, queued if self.state == "working" else 0, self.line)
        if key == self._shown:
            return
        if self._shown is None or key[0] != self._shown[0]:
            log.info("state %s: %s", self.state, self.line)
        self._shown = key
        if self.icon is not None:
            self.icon.icon = icons.draw(self.state, queued)
            self.icon.title = f"starsort: {self.line}"
            self.icon.update_menu()

    @property
    def paused(self) -> bool:
        return bool(self.status and self.status.get("paused"))

    def last_error(self) -> str | None:
        s = self.status or {}
        if s.get("problems"):
            return s["problems"][0]
        if s.get("last_error"):
            return f"{s['last_error']['at']}: {s['last_error']['message']}"
        return None if self.state != "down" else self.line

    # ---- the menu's actions -----------------------------------------------------

    def open_page(self, *_: Any) -> None:
        where = self.client.where
        if where is None:
            log.warning("the review page is not serving")
            return
        log.info("menu: open review page")
        _open(where.page)

    def toggle_pause(self, *_: Any) -> None:
        want = not self.paused
        log.info("menu: %s intake", "pause" if want else "resume")
        try:
            self.status = self.client.set_paused(want)
        except Down as e:
            log.warning("cannot %s: %s", "pause" if want else "resume", e)
            return
        self.state, self.line = self.status.get("state", self.state), self.status.get("line", self.line)
        self._show()

    def open_library(self, *_: Any) -> None:
        log.info("menu: open library")
        _open(str(self.library))

    def open_inbox(self, *_: Any) -> None:
        log.info("menu: open inbox")
        _open(str(self.inbox))

    def show_last_error(self, *_: Any) -> None:
        message = self.last_error() or "no error"
        log.info("menu: last error: %s", message)
        if self.icon is not None and getattr(self.icon, "HAS_NOTIFICATION", False):
            try:
                self.icon.notify(message, "starsort: last error")
                return
            except Exception as e:  # noqa: BLE001 - a notification server that is not there
                log.info("cannot show a notification: %s", e)

    def quit(self, *_: Any) -> None:
        log.info("menu: quit tray (the service keeps running)")
        self.stop.set()
        if self.icon is not None:
            self.icon.stop()

    # ---- running ----------------------------------------------------------------

    def menu(self, pystray: Any) -> Any:
        Item, Menu = pystray.MenuItem, pystray.Menu
        return Menu(
            Item("Open review page", self.open_page, default=True),
            Item(lambda _: self.line, None, enabled=False),
            Menu.SEPARATOR,
            Item(lambda _: "Resume intake" if self.paused else "Pause intake", self.toggle_pause,
                 enabled=lambda _: self.state != "down"),
            Item("Open library", self.open_library),
            Item("Open inbox", self.open_inbox),
            Item("Show last error", self.show_last_error),
            Menu.SEPARATOR,
            Item("Quit tray", self.quit),
        )

    def _setup(self, icon: Any) -> None:
        # pystray's setup thread: the polling loop. It watches the stop event,
        # so Quit (or a signal) ends it at once rather than after a poll.
        icon.visible = True
        while not self.stop.is_set():
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a bad answer must not kill the icon
                log.exception("polling the service failed")
            self.stop.wait(self.poll_seconds)

    def run(self) -> None:
        pystray = load_pystray()
        _name_the_process()
        self.poll()
        self.icon = pystray.Icon("starsort", icons.draw(self.state), f"starsort: {self.line}",
                                 menu=self.menu(pystray))
        backend = type(self.icon).__module__.rsplit("._", 1)[-1]
        log.info("tray: pystray's %s backend%s", backend,
                 "" if getattr(self.icon, "HAS_MENU", True) else
                 " (no menu: a click opens the review page; `make install-tray` adds the menu)")
        self._shown = None
        self._show()
        self.icon.run(setup=self._setup)
