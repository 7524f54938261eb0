"""systemd hears READY=1 once intake watches, STATUS= as it works, and WATCHDOG=1 from the loop."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import time

from starsort.service.sdnotify import SystemdNotifier

from ..daemon import Daemon
from ..helpers import DATA


def _listen(path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.2)
    return s


def _drain(s: socket.socket, into: list[tuple[float, str]]) -> None:
    while True:
        try:
            data = s.recv(4096)
        except (socket.timeout, BlockingIOError):
            return
        into.append((time.monotonic(), data.decode()))


def test_the_service_tells_systemd_it_is_ready_how_it_is_doing_and_that_its_loop_turns(tmp_path):
    sock = _listen(tmp_path / "notify")
    d = Daemon(tmp_path / "svc", settle=0.3, rescan=1.0, analyser="tests.faults.doubles:serve")
    got: list[tuple[float, str]] = []
    d.start(env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1500000"})
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and not any("READY=1" in m for _, m in got):
            _drain(sock, got)
        ready = [m for _, m in got if "READY=1" in m]
        assert ready, f"no READY=1 within 60 s: {got}\n{d.tail()}"
        assert "STATUS=idle · 0 filed today" in ready[0]
        # By READY=1 the inbox is watched: a file landing now is filed.
        shutil.copyfile(DATA / "ivan.jpg", d.inbox / "ivan.jpg")
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == 1, what="filing")
        d.cli("pause")
        end = time.monotonic() + 15
        while time.monotonic() < end and not any(m == "STATUS=intake paused" for _, m in got):
            _drain(sock, got)
        assert any(m == "STATUS=intake paused" for _, m in got), got
        # WATCHDOG_USEC 1.5 s: a ping every half second or so, never a gap near the deadline
        # (timed while listening without a break, so the times are the service's).
        watch: list[tuple[float, str]] = []
        end = time.monotonic() + 4
        while time.monotonic() < end:
            _drain(sock, watch)
        pings = [t for t, m in watch if m == "WATCHDOG=1"]
        assert len(pings) >= 6, watch
        assert max(b - a for a, b in zip(pings, pings[1:])) < 1.2
        got += watch
        assert d.stop(signal.SIGTERM) == 0
        _drain(sock, got)
        assert got[-1][1] == "STOPPING=1"
    finally:
        d.close()
        sock.close()


def test_the_notifier_reaches_an_abstract_socket_and_is_silent_without_one(tmp_path):
    name = f"starsort-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(2)
    try:
        n = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        n.ready("idle")
        assert s.recv(100) == b"READY=1\nSTATUS=idle"
        n.status("idle")            # unchanged: not sent again
        n.status("3 queued · 1.0 photos/s")
        assert s.recv(100) == "STATUS=3 queued · 1.0 photos/s".encode()
    finally:
        s.close()
    quiet = SystemdNotifier({})
    assert not quiet.enabled
    quiet.ready("idle")            # nothing to send to, nothing raised
    # A watchdog meant for another process (WATCHDOG_PID) is not ours to feed.
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "9000000", "WATCHDOG_PID": "1"}).watchdog_every is None
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "9000000"}).watchdog_every == 3.0
