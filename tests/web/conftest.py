"""The review page's app in process: a library with filed photos, and a client that speaks to the
app as a browser on this machine would (Host 127.0.0.1:PORT). Requests the app hands over are
collected instead of carried out; tests of what they do live in tests/library and tests/service."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from starlette.testclient import TestClient

from starsort.web.app import Backend, create_app
from starsort.web.security import load_token

PORT = 8765
ORIGIN = f"http://127.0.0.1:{PORT}"


@dataclass
class Page:
    client: TestClient
    token: str
    submitted: list[dict] = field(default_factory=list)

    def signed_in(self) -> TestClient:
        r = self.client.get(f"/?token={self.token}", follow_redirects=False)
        assert r.status_code == 303
        return self.client

    def post(self, url: str, body, **headers):
        h = {"Origin": ORIGIN, "X-Starsort": "1", "Content-Type": "application/json", **headers}
        return self.client.post(url, json=body, headers=h)


@pytest.fixture
def page(lib):
    submitted: list[dict] = []

    def submit(req: dict) -> int:
        submitted.append(req)
        return len(submitted)
    backend = Backend(database=lib.cfg.database, config=lambda: lib.cfg, submit=submit,
                      notices=lambda after: (0, []))
    stopping = threading.Event()
    token = load_token(lib.cfg.database)
    app = create_app(backend, token, lambda: PORT, stopping)
    with TestClient(app, base_url=ORIGIN) as client:
        yield Page(client, token, submitted)
    stopping.set()
