"""A desktop session for tests: a virtual screen (Xvfb), a session bus (dbus-launch), a
notification daemon (dunst) that logs what it is sent, and a tray host (trayer).

Each part skips its test with a one-line reason when its Debian package is missing; in CI
(STARSORT_REQUIRE_DESKTOP=1, set by .ci/run, which installs them) a missing one fails it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .helpers import missing_desktop_tool

PACKAGES = {"Xvfb": "xvfb", "dbus-launch": "dbus-x11", "dunst": "dunst", "trayer": "trayer",
            "xdotool": "xdotool", "import": "imagemagick",
            "xwininfo": "x11-utils"}


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            missing_desktop_tool(f"{tool} is not installed (Debian: apt-get install {PACKAGES.get(tool, tool)})")


def _wait(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def screen(width: int = 800, height: int = 600) -> Iterator[dict]:
    """Xvfb on a free display; yields the environment variables that point at it."""
    need("Xvfb")
    for n in range(90, 190):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: Path(f"/tmp/.X11-unix/X{n}").exists() or proc.poll() is not None, 15, "Xvfb")
        assert proc.poll() is None, "Xvfb exited"
        yield {"DISPLAY": f":{n}"}
    finally:
        _stop(proc)


@contextmanager
def session_bus(env: dict) -> Iterator[dict]:
    """A D-Bus session bus of its own; yields env with DBUS_SESSION_BUS_ADDRESS."""
    need("dbus-launch")
    out = subprocess.run(["dbus-launch", "--sh-syntax"], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True, timeout=15).stdout
    address = re.search(r"DBUS_SESSION_BUS_ADDRESS='([^']*)'", out).group(1)
    pid = int(re.search(r"DBUS_SESSION_BUS_PID=(\d+)", out).group(1))
    try:
        yield {**env, "DBUS_SESSION_BUS_ADDRESS": address}
    finally:
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass


@contextmanager
def notification_daemon(env: dict, folder: Path) -> Iterator[Path]:
    """dunst on `env`'s screen and bus; every notification it gets is appended to the yielded
    log file as 'summary<TAB>body<TAB>urgency'."""
    need("dunst")
    log = folder / "notifications.log"
    log.write_text("")
    script = folder / "log-notification.sh"
    # dunst runs the script with: appname summary body icon urgency
    script.write_text(f'#!/bin/sh\nprintf "%s\\t%s\\t%s\\n" "$2" "$3" "$5" >> "{log}"\n')
    script.chmod(0o755)
    rc = folder / "dunstrc"
    rc.write_text("[global]\n    font = Monospace 10\n    geometry = \"400x5-10+40\"\n"
                  "    width = 400\n    origin = top-right\n    offset = 10x40\n"
                  "[log]\n    summary = \"*\"\n    script = " + str(script) + "\n")
    proc = subprocess.Popen(["dunst", "-config", str(rc)], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Ready once it owns the notification service's name on the bus.
        def owned() -> bool:
            r = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                                "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                                "string:org.freedesktop.Notifications"],
                               env={**os.environ, **env}, capture_output=True, text=True)
            return "boolean true" in r.stdout
        _wait(lambda: owned() or proc.poll() is not None, 15, "dunst to take the notification bus name")
        assert proc.poll() is None, "dunst exited"
        yield log
    finally:
        _stop(proc)


def notifications(log: Path) -> list[tuple[str, str, str]]:
    return [tuple(line.split("\t")) for line in log.read_text().splitlines() if line.count("\t") == 2]


@contextmanager
def tray_host(env: dict) -> Iterator[subprocess.Popen]:
    """trayer, a system tray (XEmbed), docked at the top right of the screen, 200 x 48 px."""
    need("trayer", "xwininfo")
    proc = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
                             "--width", "200", "--heighttype", "pixel", "--height", "48",
                             "--SetDockType", "true", "--transparent", "false", "--tint", "0xdddddd",
                             "--expand", "false", "--iconspacing", "4"],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            r = subprocess.run(["xwininfo", "-root", "-tree"], env={**os.environ, **env}, capture_output=True,
                               text=True)
            return "panel" in r.stdout.lower() or "trayer" in r.stdout.lower()
        _wait(lambda: up() or proc.poll() is not None, 15, "trayer")
        assert proc.poll() is None, "trayer exited"
        yield proc
    finally:
        _stop(proc)


def screenshot(env: dict, path: Path, crop: str | None = None) -> Path:
    """The whole screen (or `crop`, WxH+X+Y) as a PNG."""
    need("import")
    cmd = ["import", "-window", "root", *(["-crop", crop] if crop else []), str(path)]
    subprocess.run(cmd, env={**os.environ, **env}, check=True, timeout=30, capture_output=True)
    return path
