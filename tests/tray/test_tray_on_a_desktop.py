"""`starsort tray` on a real (virtual) desktop: Xvfb, a tray host (trayer), pystray's GTK backend.

The icon docks; it follows a real service through idle, working, paused, error and down; its
menu, clicked with xdotool, pauses the service (files keep landing and are recorded, none is
filed) and resumes it (they are filed); Quit ends the tray and leaves the service running.
A screenshot of each state goes to tests/tray/screenshots/.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from ..daemon import Daemon
from ..desktop import need, screen, screenshot, session_bus, tray_host
from ..helpers import DATA, missing_desktop_tool

SHOTS = Path(__file__).resolve().parent / "screenshots"
PHOTOS = ("ivan.jpg", "clapton-2.jpg", "no-faces.jpg", "multiface.jpg", "kit_with_rose.jpg",
          "SonyDSC-P5_DSC00001.JPG")


def _gtk_available() -> None:
    r = subprocess.run([sys.executable, "-c", "import gi; gi.require_version('Gtk', '3.0');"
                        " from gi.repository import Gtk"], capture_output=True, text=True)
    if r.returncode != 0:
        missing_desktop_tool("PyGObject with GTK 3 is not installed (`make install-tray`)")


class Desk:
    def __init__(self, env: dict, d: Daemon, tmp: Path):
        self.env = {**os.environ, **env}
        self.d = d
        self.log = tmp / "tray.log"
        self.proc: subprocess.Popen | None = None

    def start_tray(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "starsort", "tray", "--config", str(self.d.config)],
                                     env={**self.d.env, **self.env, "PYSTRAY_BACKEND": "gtk"},
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def tray_log(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.tray_log():
                return
            assert self.proc.poll() is None, f"the tray exited:\n{self.tray_log()}"
            time.sleep(0.1)
        raise AssertionError(f"the tray never logged {text!r}:\n{self.tray_log()}\n{self.d.tail(2000)}")

    def states(self) -> list[str]:
        return re.findall(r"starsort\.tray: state (\w+):", self.tray_log())

    def wait_state(self, state: str, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.states() and self.states()[-1] == state:
                return
            time.sleep(0.1)
        raise AssertionError(f"the tray never showed {state}: {self.states()}\n{self.tray_log()}")

    def icon_box(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the tray icon's window, docked inside trayer's panel (once laid out)."""
        end = time.monotonic() + 10
        last = None
        while True:
            tree = subprocess.run(["xwininfo", "-root", "-tree"], env=self.env, capture_output=True,
                                  text=True).stdout
            in_panel = tree.split('"panel"', 1)[1] if '"panel"' in tree else ""
            m = re.search(r'"[^"]*": \("starsort" "[^"]*"\)\s+(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)',
                          in_panel)
            if m and int(m.group(1)) >= 16:
                w, h, x, y = map(int, m.groups())
                if (x, y, w, h) == last:          # laid out: the same twice in a row
                    return x, y, w, h
                last = (x, y, w, h)
            assert time.monotonic() < end, f"no starsort icon docked in the tray host:\n{tree}"
            time.sleep(0.3)

    def shot(self, name: str) -> tuple[int, int, int]:
        """A screenshot of the panel; returns the colour inside the icon's disc, clear of its marks
        (the count, the pause bars, the "!", the cross: all keep off the disc's upper left)."""
        SHOTS.mkdir(exist_ok=True)
        x, y, w, h = self.icon_box()
        path = screenshot(self.env, SHOTS / f"tray-{name}.png", crop="200x48+600+0")
        img = Image.open(path).convert("RGB")
        return img.getpixel((x - 600 + round(w * 24 / 64), y + round(h * 12 / 64)))

    def menu(self, *keys: str, shot: str | None = None) -> None:
        """Right-click the icon, press `keys` in its menu (a screenshot first if asked)."""
        x, y, w, h = self.icon_box()
        subprocess.run(["xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3"], env=self.env,
                       check=True)
        time.sleep(1.0)
        if shot:
            screenshot(self.env, SHOTS / f"tray-{shot}.png", crop="400x300+400+0")
        if keys:
            subprocess.run(["xdotool", "key", "--delay", "150", *keys], env=self.env, check=True)


def _green(c) -> bool:
    return c[1] > c[0] + 60 and c[1] > c[2] + 60


def _amber(c) -> bool:
    return c[0] > 200 and 100 < c[1] < 200 and c[2] < 80


def _red(c) -> bool:
    return c[0] > 180 and c[1] < 80 and c[2] < 80


def _grey(c) -> bool:
    return max(c) - min(c) < 20 and 60 < c[0] < 160


def test_the_tray_docks_follows_the_service_and_its_menu_pauses_and_resumes_intake(tmp_path):
    need("Xvfb", "trayer", "xdotool", "xwininfo", "import", "dbus-launch")
    _gtk_available()
    full = tmp_path / "disk-is-full"
    with screen() as display, session_bus(display) as env, tray_host(env):
        d = Daemon(tmp_path / "svc", settle=0.3, rescan=1.0, analyser="tests.faults.doubles:serve",
                   env={**env, "STARSORT_FAKE_DELAY": "0.8", "STARSORT_FAIL_AT": f"write,link:ENOSPC:{full}"})
        d.config.write_text(d.config.read_text() + "notifications:\n  enabled: false\n")
        desk = Desk(display, d, tmp_path)
        d.start()
        try:
            d.wait(d.started, what="the service to start")
            desk.start_tray()
            desk.wait_log("pystray's gtk backend")
            desk.wait_state("idle")
            assert _green(desk.shot("idle"))

            # working: photos land faster than they are analysed
            for name in PHOTOS:
                shutil.copyfile(DATA / name, d.inbox / name)
            desk.wait_state("working")
            assert _amber(desk.shot("working"))
            d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == len(PHOTOS),
                   what="the shoot to be filed")
            desk.wait_state("idle")

            # paused, from the menu: Down selects "Open review page", the next Down skips the
            # status line (disabled) and lands on "Pause intake"
            desk.menu("Down", "Down", shot="menu-idle")
            subprocess.run(["xdotool", "key", "Return"], env=desk.env, check=True)
            desk.wait_log("menu: pause intake")
            desk.wait_state("paused")
            assert _grey(desk.shot("paused"))
            more = ("106_NIKON-D3400-35MM_S.JPG", "SonySLT-A55__DSC3755.JPG")
            for name in more:
                shutil.copyfile(DATA / name, d.inbox / name)
            d.wait(lambda: d.count("SELECT count(*) FROM inbox") == 2, what="the new files to be recorded")
            time.sleep(2.5)
            assert sorted(p.name for p in d.inbox.iterdir()) == sorted(more)     # nothing moved
            desk.menu(shot="menu-paused")                                        # it says "Resume intake"
            subprocess.run(["xdotool", "key", "Escape"], env=desk.env, check=True)

            # resumed, from the menu: the recorded files are filed
            time.sleep(0.5)
            desk.menu("Down", "Down", "Return")
            desk.wait_log("menu: resume intake")
            d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == len(PHOTOS) + 2,
                   timeout=30, what="the files recorded while paused to be filed")
            desk.wait_state("idle")

            # error: the library's disk is full
            full.touch()
            shutil.copyfile(DATA / "SonySLT-A55__DSC3756.JPG", d.inbox / "SonySLT-A55__DSC3756.JPG")
            desk.wait_state("error")
            assert _red(desk.shot("error"))
            assert "state error: library full: 1 photo waiting" in desk.tray_log()
            full.unlink()
            desk.wait_state("idle", timeout=30)

            # down: the service stops; the tray stays and says so
            assert d.stop(signal.SIGTERM) == 0
            desk.wait_state("down")
            assert _grey(desk.shot("down"))
            for state in ("idle", "working", "paused", "error", "down"):
                assert state in desk.states()

            # Quit: Up from no selection is the last item, "Quit tray"; the tray ends at once
            d.start()
            d.wait(d.started, what="the service to start again")
            desk.wait_state("idle")
            t0 = time.monotonic()
            desk.menu("Up", "Return")
            assert desk.proc.wait(timeout=10) == 0
            assert time.monotonic() - t0 < 6
            assert "menu: quit tray" in desk.tray_log()
            assert d.proc.poll() is None                                         # the service goes on
            assert d.stop(signal.SIGTERM) == 0
        finally:
            if desk.proc is not None and desk.proc.poll() is None:
                desk.proc.kill()
            d.close()
