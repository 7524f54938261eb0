"""Talking to the running service over the review page's API, with the install's token."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

TIMEOUT = 3.0


class Down(Exception):
    """The service is not answering."""


@dataclass(frozen=True)
class Where:
    port: int
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def page(self) -> str:
        return f"{self.base}/?token={self.token}"


class Client:
    def __init__(self, locate: Callable[[], Where | None]):
        # Found again whenever the service stops answering: it may have come
        # back on another port (review.port: 0), or with a new token.
        self._locate = locate
        self._where: Where | None = None

    @property
    def where(self) -> Where | None:
        if self._where is None:
            self._where = self._locate()
        return self._where

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        where = self.where
        if where is None:
            raise Down("the review page is not serving (is the service running, with review.enabled?)")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(where.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {where.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            self._where = None
            raise Down(f"the service is not answering ({getattr(e, 'reason', e)})") from e

    def status(self) -> dict:
        return self._call("GET", "/api/status")

    def set_paused(self, paused: bool) -> dict:
        return self._call("POST", "/api/intake", {"paused": paused, "by": "tray"})
