"""The review page's JSON API, as the tray, scripts and the page itself rely on it."""
from __future__ import annotations

import json
import threading
import time

from starlette.testclient import TestClient

from starsort.library import overrides
from starsort.store import review
from starsort.web.app import Backend, create_app
from starsort.web.security import load_token

from ..helpers import filed
from .conftest import ORIGIN, PORT


CONTRACT = {"id", "original_path", "current_path", "pair_path", "state", "stars", "decided_by", "rejected",
            "cluster_id", "is_pick", "faces"}


def test_photos_come_newest_first_with_every_field_of_the_contract(page, lib, folders):
    ids = [filed(lib, folders, f"DSC0000{i}", pair=i == 1, phash=f"{i:016x}") for i in range(1, 4)]
    c = page.signed_in()
    rows = c.get("/api/photos").json()
    assert [r["id"] for r in rows] == ids[::-1]
    assert CONTRACT <= set(rows[-1])
    pair = rows[-1]
    assert pair["pair_path"].endswith("5-stars/DSC00001.JPG") and pair["state"] == "done"
    assert pair["decided_by"] == "machine" and pair["rejected"] is False and pair["stars"] == 5
    assert pair["faces"] == [{"box": [10.0, 10.0, 110.0, 130.0], "score": 50.0, "blurry": False, "skipped": None}]
    assert pair["why"] == "1 face, 50.0 against 10.0 (margin 400%) → 5★"


def test_a_face_too_small_to_judge_is_shown_as_skipped_and_makes_no_photo_borderline(page, lib, folders):
    # An 11.0 would be borderline (within 25 % of 10.0), but on a 40 px face it does not count.
    photo = filed(lib, folders, "GROUP", pair=False, scores=[50.0, 11.0], widths=[300.0, 40.0])
    c = page.signed_in()
    row = c.get("/api/photos").json()[0]
    assert row["id"] == photo
    assert [(f["skipped"], f["blurry"]) for f in row["faces"]] == [(None, False), ("small", None)]
    assert row["verdict"] == "sharp"
    assert row["why"].endswith("1 face skipped: 1 too small to judge (40 px)")
    assert c.get("/api/counts").json()["borderline"] == 0
    assert c.get("/api/photos", params={"filter": "borderline"}).json() == []


def test_paging_by_after_walks_the_whole_library_once(page, lib, folders):
    ids = [filed(lib, folders, f"IMG_{i}", pair=False, phash=f"{i:016x}") for i in range(7)]
    c = page.signed_in()
    seen, after = [], None
    while True:
        rows = c.get("/api/photos", params={"limit": 3, **({"after": after} if after else {})}).json()
        if not rows:
            break
        seen += [r["id"] for r in rows]
        after = rows[-1]["id"]
    assert seen == ids[::-1]


def test_filters_and_their_counts_agree(page, lib, folders):
    a = filed(lib, folders, "A", pair=False, scores=[50.0], phash="1" * 16)
    b = filed(lib, folders, "B", pair=False, scores=[11.0], phash="2" * 16)          # borderline: within 25% of 10
    c_ = filed(lib, folders, "C", pair=False, scores=[3.0], stars=1, phash="3" * 16)
    overrides.reject(lib, c_)
    overrides.set_stars(lib, a, 4)
    c = page.signed_in()
    counts = c.get("/api/counts").json()
    assert counts["all"] == 3 and counts["stars"]["4"] == 1 and counts["stars"]["5"] == 1
    assert (counts["rejected"], counts["unreviewed"], counts["borderline"]) == (1, 1, 1)
    assert [r["id"] for r in c.get("/api/photos", params={"filter": "rejected"}).json()] == [c_]
    assert [r["id"] for r in c.get("/api/photos", params={"filter": "unreviewed"}).json()] == [b]
    assert [r["id"] for r in c.get("/api/photos", params={"filter": "borderline"}).json()] == [b]
    assert [r["id"] for r in c.get("/api/photos", params={"stars": 4}).json()] == [a]
    verdicts = {r["id"]: r["verdict"] for r in c.get("/api/photos").json()}
    assert verdicts == {a: "sharp", b: "borderline", c_: "blurry"}


def test_the_what_if_count_is_the_rerate_plan_and_comes_from_stored_scores(page, lib, folders):
    # At 10.0: 2★ (blurry but soft), 3★, 3★ (margins 10 % and 15 %), 4★ (40 %), 5★.
    for i, (s, stars) in enumerate([(9.0, 2), (11.0, 3), (11.5, 3), (14.0, 4), (40.0, 5)]):
        filed(lib, folders, f"F{i}", pair=False, scores=[s], stars=stars, phash=f"{i + 1:016x}")
    c = page.signed_in()
    r = c.get("/api/whatif", params={"threshold": 12.0}).json()
    # At 12.0, 11.0 and 11.5 fall below it (soft: 2★) and 14.0 clears it by 17 % only (3★).
    assert r == {"threshold": 12.0, "threshold_in_force": 10.0, "changes": 3, "moves": {"3->2": 2, "4->3": 1}}
    trial = lib.cfg.model_copy(update={"blur": lib.cfg.blur.model_copy(update={"threshold": 12.0})})
    assert len(lib.call(lambda db: review.rerate_changes(db, trial))) == 3
    assert c.get("/api/whatif").json()["changes"] == 0


def test_a_change_is_accepted_with_202_and_handed_to_the_deciding_thread(page, lib, folders):
    photo_id = filed(lib, folders, pair=False)
    page.signed_in()
    assert page.post(f"/api/photos/{photo_id}", {"stars": 2}).status_code == 202
    assert page.post(f"/api/photos/{photo_id}", {"reject": True}).status_code == 202
    assert page.post(f"/api/photos/{photo_id}", {"pick": True}).status_code == 202
    assert page.post(f"/api/photos/{photo_id}", {"machine": True}).status_code == 202
    assert page.post("/api/undo", {}).status_code == 202
    assert page.post("/api/rerate", {"threshold": 12.5}).status_code == 202
    for bad in ({"stars": 6}, {"stars": 0}, {"stars": True}, {"reject": False}, {"stars": 2, "reject": True}, []):
        assert page.post(f"/api/photos/{photo_id}", bad).status_code == 400, bad
    assert [r["action"] for r in page.submitted] == ["stars", "reject", "pick", "machine", "undo", "rerate"]
    assert page.submitted[-1]["threshold"] == 12.5


def test_a_preview_is_served_by_id_with_an_etag_and_a_year_of_caching(page, lib, folders):
    photo_id = filed(lib, folders, pair=False)
    c = page.signed_in()
    # A JPEG's full size is the original itself.
    r = c.get(f"/api/photos/{photo_id}/preview/full")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == (folders["library"] / "5-stars" / "DSC00001.JPG").read_bytes()
    assert "immutable" in r.headers["cache-control"]
    again = c.get(f"/api/photos/{photo_id}/preview/full", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    # No worker made small previews in this test: none is invented.
    assert c.get(f"/api/photos/{photo_id}/preview/s").status_code == 404


def test_the_event_stream_sends_each_changed_photo_once_in_order(page, lib, folders):
    first = filed(lib, folders, "A", pair=False, phash="1" * 16)
    c = page.signed_in()
    since = int(c.get("/api/photos").headers["x-starsort-seq"])
    got: list[dict] = []

    def later() -> None:
        time.sleep(0.3)
        overrides.set_stars(lib, first, 3)
    t = threading.Thread(target=later)
    t.start()
    with c.stream("GET", f"/api/events?since={since}") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "photo":
                got.append(json.loads(line[6:]))
                if got[-1]["stars"] == 3 and got[-1]["decided_by"] == "photographer":
                    break
    t.join()
    assert {g["id"] for g in got} == {first}
    assert [g["seq"] for g in got] == sorted({g["seq"] for g in got})       # in order, none twice
    assert got[-1]["current_path"].endswith("3-stars/A.JPG")


def test_the_event_stream_reads_through_each_threads_own_connection(lib, folders, monkeypatch):
    # Each server thread has its own read-only connection; the stream's reads run in worker
    # threads, and one connection shared by every stream's workers at once is not what SQLite's
    # Python module promises to serialise. A connection that refuses other threads shows it.
    import sqlite3

    from sqlite_utils import Database

    from starsort.web import app as web_app

    def strict(path, readonly=False):
        return Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=True))
    monkeypatch.setattr(web_app, "connect", strict)
    first = filed(lib, folders, "A", pair=False, phash="1" * 16)
    backend = Backend(database=lib.cfg.database, config=lambda: lib.cfg, submit=lambda req: 1,
                      notices=lambda after: (0, []))
    stopping = threading.Event()
    token = load_token(lib.cfg.database)
    with TestClient(create_app(backend, token, lambda: PORT, stopping), base_url=ORIGIN) as c:
        c.get(f"/?token={token}", follow_redirects=False)
        since = int(c.get("/api/photos").headers["x-starsort-seq"])
        overrides.set_stars(lib, first, 3)
        with c.stream("GET", f"/api/events?since={since}") as r:
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "photo":
                    assert json.loads(line[6:])["stars"] == 3
                    break
    stopping.set()


def test_status_is_the_same_data_as_status_json(page, lib, folders):
    from starsort.store import queries
    filed(lib, folders, pair=False)
    c = page.signed_in()
    api = c.get("/api/status").json()
    cli = lib.call(queries.status)
    for key in ("queue_depth", "photos", "stars", "last_error", "photos_per_second", "undone"):
        assert api[key] == cli[key], key


def test_the_page_itself_is_served_only_from_files_in_the_package(page):
    c = page.signed_in()
    assert c.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert c.get("/static/app.css").status_code == 200
    assert c.get("/static/index.html").status_code == 404




def test_people_find_answers_from_the_vectors_and_refuses_anything_but_vectors_and_thresholds(page, lib, folders):
    import numpy as np

    from starsort.store import people as people_store
    from ..helpers import filed
    photo = filed(lib, folders, "P1", pair=False, scores=[50.0])
    [face] = [r[0] for r in lib.call(lambda db: db.execute("SELECT id FROM faces WHERE photo_id = ?",
                                                           (photo,)).fetchall())]
    v = np.zeros(128, np.float32)
    v[3] = 1.0
    lib.call(lambda db: people_store.add_vector(db, face, "test", v.astype("<f4").tobytes()))
    c = page.signed_in()
    r = page.post("/api/people/find", {"vectors": [v.tolist()], "threshold": 0.5})
    assert r.status_code == 200 and r.json() == [{"face_id": face, "photo_id": photo, "distance": 0.0}]
    far = np.zeros(128, np.float32)
    far[4] = 1.0
    assert page.post("/api/people/find", {"vectors": [far.tolist()], "threshold": 0.5}).json() == []
    # The sure matches' expansion is asked for, and answered the same here (one face, itself).
    assert page.post("/api/people/find", {"vectors": [v.tolist()], "threshold": 0.5, "expand": 0.35}).json() == [
        {"face_id": face, "photo_id": photo, "distance": 0.0}]
    for bad in ({"vectors": [[1.0] * 127], "threshold": 0.5}, {"vectors": [v.tolist()], "threshold": "x"},
                {"vectors": "/etc/passwd", "threshold": 0.5}, {"vectors": [["a"] * 128], "threshold": 0.5},
                {"vectors": [v.tolist()], "threshold": 0.5, "expand": -1},
                {"vectors": [v.tolist()], "threshold": 0.5, "expand": True}):
        assert page.post("/api/people/find", bad).status_code == 400, bad
    assert c.get("/api/people/find").status_code == 405
