"""Every rule that guards the review page, each shown refusing a request that breaks it: the page moves
files, so it is a door into the photographer's library."""
from __future__ import annotations

import os
import stat

from starsort.web import security

from ..helpers import filed
from .conftest import ORIGIN, PORT


def test_the_token_file_is_readable_by_its_owner_only(page, lib):
    path = security.token_path(lib.cfg.database)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == page.token and len(page.token) >= 40


def test_a_request_naming_another_host_is_refused_as_dns_rebinding(page):
    c = page.signed_in()
    for host in ("evil.example", f"evil.example:{PORT}", "127.0.0.1:1", f"192.168.1.10:{PORT}"):
        r = c.get("/api/status", headers={"Host": host})
        assert r.status_code == 421, host
    assert c.get("/api/status").status_code == 200
    assert c.get("/api/status", headers={"Host": f"localhost:{PORT}"}).status_code == 200


def test_without_the_token_nothing_is_served_but_a_note_on_how_to_sign_in(page):
    c = page.client
    assert c.get("/api/photos").status_code == 401
    assert c.get("/api/status").status_code == 401
    r = c.get("/")
    assert r.status_code == 401 and "starsort review" in r.text and "<script" not in r.text
    assert c.get("/?token=wrong").status_code == 401
    assert c.get("/api/status", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_token_in_the_url_becomes_an_httponly_strict_cookie_and_leaves_the_address_bar(page):
    r = page.client.get(f"/?token={page.token}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and page.token.lower() not in cookie
    assert page.client.get("/").status_code == 200
    assert page.client.get("/api/status").status_code == 200


def test_scripts_sign_in_with_a_bearer_token_and_need_no_origin(page, lib, folders):
    photo_id = filed(lib, folders, pair=False)
    h = {"Authorization": f"Bearer {page.token}"}
    assert page.client.get("/api/status", headers=h).status_code == 200
    r = page.client.post(f"/api/photos/{photo_id}", json={"stars": 2}, headers=h)
    assert r.status_code == 202 and page.submitted == [{"action": "stars", "photo": photo_id, "stars": 2}]


def test_a_cross_origin_post_is_refused_even_with_the_cookie(page, lib, folders):
    photo_id = filed(lib, folders, pair=False)
    page.signed_in()
    assert page.post(f"/api/photos/{photo_id}", {"stars": 2}, Origin="http://evil.example").status_code == 403
    r = page.client.post(f"/api/photos/{photo_id}", json={"stars": 2}, headers={"Origin": ORIGIN})
    assert r.status_code == 403                                    # no X-Starsort header: a plain form or fetch
    r = page.client.post(f"/api/photos/{photo_id}", content=b"stars=2", headers={
        "Origin": ORIGIN, "X-Starsort": "1", "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403                                    # not JSON
    assert page.submitted == []
    assert page.post(f"/api/photos/{photo_id}", {"stars": 2}).status_code == 202


def test_an_id_that_does_not_exist_is_a_404_and_changes_nothing(page):
    c = page.signed_in()
    assert c.get("/api/photos/424242").status_code == 404
    assert c.get("/api/photos/424242/preview/s").status_code == 404
    assert page.post("/api/photos/424242", {"stars": 3}).status_code == 404
    assert page.submitted == []


def test_a_path_in_a_parameter_is_refused_and_nothing_serves_a_folder(page, lib, folders):
    photo_id = filed(lib, folders, pair=False)
    c = page.signed_in()
    for url in ("/api/photos?after=../../etc/passwd", "/api/photos?path=/etc/passwd",
                "/api/photos?state=/etc/passwd", "/api/photos?filter=..%2F..",
                f"/api/photos/{photo_id}?path=/etc/passwd", "/api/whatif?threshold=/etc/passwd",
                "/api/events?since=/etc/passwd"):
        assert c.get(url).status_code == 400, url
    for url in ("/api/photos/..%2F..%2Fetc%2Fpasswd", f"/api/photos/{photo_id}/preview/..%2F..%2Fetc%2Fpasswd",
                f"/api/photos/{photo_id}/preview/%2Fetc%2Fpasswd", "/static/..%2Fapp.py", "/static/",
                "/static/../web/app.py", "/api/", "/etc/passwd"):
        r = c.get(url)
        assert r.status_code == 404 and "root:" not in r.text, url
    assert page.post(f"/api/photos/{photo_id}", {"stars": "/etc/passwd"}).status_code == 400
    assert page.post(f"/api/photos/{photo_id}", {"path": "/etc/passwd"}).status_code == 400
    assert page.submitted == []


def test_every_answer_forbids_sniffing_and_framing_and_the_page_allows_only_its_own_scripts(page):
    c = page.signed_in()
    for r in (c.get("/"), c.get("/api/status"), c.get("/api/photos/9"), c.get("/api/status", headers={"Host": "x"})):
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script src=\"/static/app.js\"" in c.get("/").text


def test_a_state_change_must_be_a_post(page, lib, folders):
    photo_id = filed(lib, folders, pair=False)
    c = page.signed_in()
    assert c.put(f"/api/photos/{photo_id}", json={"stars": 2}, headers={"Origin": ORIGIN, "X-Starsort": "1"}
                 ).status_code in (403, 405)
    assert c.get(f"/api/undo").status_code == 405
    assert page.submitted == []


def test_pausing_intake_needs_the_same_sign_in_origin_and_header_as_any_change(page, lib):
    from starsort import pause
    c = page.client
    assert c.post("/api/intake", json={"paused": True}, headers={"Content-Type": "application/json"}
                  ).status_code == 401                                  # not signed in
    page.signed_in()
    assert page.post("/api/intake", {"paused": True}, Origin="http://evil.example").status_code == 403
    r = c.post("/api/intake", json={"paused": True}, headers={"Origin": ORIGIN})
    assert r.status_code == 403                                         # no X-Starsort header
    assert c.get("/api/intake").status_code == 405
    assert pause.state(lib.cfg.database) is None                        # none of those paused it
    r = page.post("/api/intake", {"paused": True})
    assert r.status_code == 200 and r.json()["paused"] is True and r.json()["state"] in ("paused", "down")
    assert pause.state(lib.cfg.database)["by"] == "review page"
    assert page.post("/api/intake", {"paused": False, "by": "x" * 41}).status_code == 400
    assert page.post("/api/intake", {"paused": False}).json()["paused"] is False
