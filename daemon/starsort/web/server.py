"""The review page's server: uvicorn in a thread of the process that serves it, on loopback only.

Bound to 127.0.0.1 and ::1 (where the machine has IPv6), never to a
routable address, on `review.port` (0: a free port). The sockets are bound
here and handed to uvicorn, so the port is known before the first request
and a busy port is one clear error, not a crash of the service.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from pathlib import Path

from .app import Backend, create_app
from .security import load_token

log = logging.getLogger("starsort.web")


class PortInUse(OSError):
    pass


def _bind(port: int) -> list[socket.socket]:
    socks: list[socket.socket] = []
    # proto=IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on
    # sockets that say they are TCP, and with it on every answer waited for
    # the browser's delayed ACK, 40 ms a request.
    s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s4.bind(("127.0.0.1", port))
    except OSError as e:
        s4.close()
        raise PortInUse(e.errno, f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from None
    socks.append(s4)
    port = s4.getsockname()[1]
    if socket.has_ipv6:
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s6.bind(("::1", port))
            socks.append(s6)
        except OSError:
            s6.close()              # no IPv6 loopback here: 127.0.0.1 alone
    for s in socks:
        s.listen(64)
        s.setblocking(False)
    return socks


class Server:
    """Start with `start()`; `url` then says where; `stop()` ends it within a second or two."""

    def __init__(self, backend: Backend, port: int):
        self.backend = backend
        self.requested_port = port
        self.port = 0
        self.token = load_token(backend.database)
        self._thread: threading.Thread | None = None
        self._server = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "Server":
        import uvicorn

        socks = _bind(self.requested_port)
        self.port = socks[0].getsockname()[1]
        app = create_app(self.backend, self.token, lambda: self.port, self._stopping)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1, timeout_keep_alive=5, server_header=False)
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                ready.set()
                loop.run_until_complete(self._server.serve(sockets=socks))
            except Exception:  # noqa: BLE001 - the page is a convenience: the service carries on
                log.exception("the review page stopped")
            finally:
                for s in socks:
                    s.close()
                loop.close()

        self._thread = threading.Thread(target=serve, name="starsort-review", daemon=True)
        self._thread.start()
        ready.wait(5)
        log.info("review page on %s (and [::1]); `starsort review` opens it", self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)


def url_with_token(port: int, database: Path) -> str:
    token = load_token(database, create=False) or ""
    return f"http://127.0.0.1:{port}/?token={token}"
