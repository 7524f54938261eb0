"""Telling systemd how the service is doing: the sd_notify protocol.

    READY=1       once the inboxes are scanned and watched (Type=notify)
    STATUS=...    "12 queued · 6.1 photos/s", shown by `systemctl --user status`
    WATCHDOG=1    from the loop's heartbeat: a loop that stops turning stops
                  sending it, and systemd restarts the service (WatchdogSec=)
    STOPPING=1    on a clean stop

The protocol is one datagram per message to the socket named by
$NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). It is a few
lines, so it is written here rather than pulled in as a dependency; without
$NOTIFY_SOCKET (a terminal, launchd, a test) every call does nothing.
"""
from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("starsort.service")


class SystemdNotifier:
    def __init__(self, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET", "")
        self._addr = ("\0" + addr[1:]) if addr.startswith("@") else addr
        # systemd halves nothing for us: WATCHDOG_USEC is the deadline, and
        # a ping every third of it leaves room for a slow turn of the loop.
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_every = (int(usec) / 1e6 / 3 if usec.isdigit() and int(usec) > 0
                               and (not pid or pid == str(os.getpid())) else None)
        self._last_ping = 0.0
        self._last_status = ""
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._addr)

    def send(self, message: str) -> None:
        if not self._addr:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), self._addr)
        except OSError as e:
            # The manager going away must not take the service with it.
            log.debug("sd_notify %r: %s", message, e)

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send(f"READY=1\nSTATUS={status}")

    def status(self, line: str) -> None:
        if line != self._last_status:
            self._last_status = line
            self.send(f"STATUS={line}")

    def alive(self) -> None:
        """From the loop, every turn: a WATCHDOG=1 when one is due."""
        if self.watchdog_every is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_every:
            self._last_ping = now
            self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
