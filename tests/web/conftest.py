"""The review page's app in process: a library with filed photos, and a client that speaks to the
app as a browser on this machine would (Host 127.0.0.1:PORT). Requests the app hands over are
collected instead of carried out; tests of what they do live in tests/library and tests/service.
And `browser`: the system's Chromium through Playwright, for the page driven as a photographer
drives it (test_page_in_browser.py)."""
from __future__ import annotations

import os
import shutil
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


# ---- a real browser -------------------------------------------------------------------------------

# Quiet flags for a browser that only ever talks to 127.0.0.1: no update checks, no sync, no
# first-run dialogs. As root, Playwright adds --no-sandbox itself.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def _no_browser(reason: str) -> None:
    """A missing browser skips the test on a photographer's machine, and fails it where the
    browser is required (CI sets STARSORT_REQUIRE_BROWSER=1), so the page is never left untested
    there by accident."""
    if os.environ.get("STARSORT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"STARSORT_REQUIRE_BROWSER=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser():
    """Chromium driven by Playwright: the system's chromium (Debian: apt-get install chromium),
    never a browser Playwright downloads."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _no_browser("the browser tests need playwright (pip install -e '.[test]')")
    exe = chromium_path()
    if exe is None:
        _no_browser("the browser tests need chromium (Debian: apt-get install chromium chromium-driver)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        except Error as e:
            _no_browser(f"chromium at {exe} does not start: {str(e).strip().splitlines()[0]}")
        try:
            yield b
        finally:
            b.close()
