"""How the service is doing: problems that stand now, and the one word and line for the tray and systemd."""
from __future__ import annotations

import re
import time

from starsort import pause
from starsort.config import Config
from starsort.store import health, photos, queries


def _cfg(tmp_path, library_exists: bool = True) -> Config:
    lib = tmp_path / "library"
    if library_exists:
        lib.mkdir(exist_ok=True)
    return Config(inboxes=[tmp_path / "inbox"], library=lib, database=tmp_path / "state" / "starsort.db")


def _photo(db, name: str, now: float) -> int:
    return photos.queue(db, original=f"/in/{name}", pair=None, kind="jpeg", size=10, mtime_ns=1, now=now)


def _quarantine(db, pid: int, reason: str, now: float) -> None:
    photos.note_error(db, pid, reason, now)
    photos.start_filing(db, pid, now)
    photos.filed(db, pid, "quarantined", f"/lib/quarantine/{pid}.JPG", None, now)


def test_a_full_library_is_a_problem_while_photos_wait_for_it_and_clears_when_they_are_filed(fresh_db, tmp_path):
    db, cfg = fresh_db, _cfg(tmp_path)
    ids = [_photo(db, f"DSC{i}.JPG", 1.0) for i in range(3)]
    for i in ids:
        photos.start_filing(db, i, 2.0)
        photos.filing_failed(db, i, "cannot file into /lib/4-stars: [Errno 28] No space left on device")
    assert health.problems(db, cfg) == ["library full: 3 photos waiting"]
    s = health.status(db, cfg)
    assert s["state"] == "down"            # no service row: the tray shows it crossed out
    s["running"] = True
    assert health.word(s) == "error" and health.line({**s, "state": "error"}) == "library full: 3 photos waiting"
    for i in ids:
        photos.start_filing(db, i, 3.0)
        photos.filed(db, i, "done", f"/lib/4-stars/{i}.JPG", None, time.time())
    assert health.problems(db, cfg) == []


def test_a_missing_library_and_a_run_of_quarantines_are_problems_but_one_bad_file_is_not(fresh_db, tmp_path):
    db, cfg = fresh_db, _cfg(tmp_path, library_exists=False)
    assert health.problems(db, cfg)[0].startswith("library missing: ")
    cfg = _cfg(tmp_path)
    now = time.time()
    good = _photo(db, "good.JPG", now)
    photos.start_filing(db, good, now)
    photos.filed(db, good, "done", "/lib/3-stars/good.JPG", None, now)
    for i in range(health.QUARANTINE_RUN - 1):
        pid = _photo(db, f"bad{i}.JPG", now)
        _quarantine(db, pid, "truncated JPEG", now + 1 + i)
    assert health.problems(db, cfg) == []
    pid = _photo(db, "bad-last.JPG", now)
    _quarantine(db, pid, "truncated JPEG", now + 10)
    assert health.problems(db, cfg) == [f"{health.QUARANTINE_RUN} photos quarantined in a row (the last: truncated JPEG)"]


def test_the_word_and_line_follow_down_error_paused_working_idle_in_that_order():
    base = {"running": True, "problems": [], "paused": False, "queue_depth": 0, "filed_today": 1204,
            "photos_per_second": 6.14}
    assert (health.word(base), health.line(base)) == ("idle", "idle · 1,204 filed today")
    s = {**base, "queue_depth": 12}
    assert (health.word(s), health.line(s)) == ("working", "12 queued · 6.1 photos/s")
    s = {**s, "paused": True}
    assert (health.word(s), health.line(s)) == ("paused", "intake paused · 12 waiting")
    s = {**s, "problems": ["library full: 14 photos waiting"]}
    assert (health.word(s), health.line(s)) == ("error", "library full: 14 photos waiting")
    s = {**s, "running": False}
    assert health.word(s) == "down"


def test_status_reports_the_pause_switch_with_when_and_who(fresh_db, tmp_path):
    cfg = _cfg(tmp_path)
    assert health.status(fresh_db, cfg)["paused"] is False
    assert pause.pause(cfg.database, by="tray") is True
    assert pause.pause(cfg.database, by="tray") is False       # already paused
    s = health.status(fresh_db, cfg)
    assert s["paused"] is True and s["paused_since"] and "intake PAUSED" in queries.format_status(s)
    assert pause.resume(cfg.database) is True and pause.resume(cfg.database) is False
    assert health.status(fresh_db, cfg)["paused"] is False


def test_the_service_brief_status_asks_only_indexed_questions(fresh_db, tmp_path):
    # Every few seconds from the loop: no query may walk the whole photos table.
    db, cfg = fresh_db, _cfg(tmp_path)
    plans = []
    db.conn.set_trace_callback(lambda sql: plans.append(sql) if sql.lstrip().upper().startswith("SELECT") else None)
    health.brief(db, cfg)
    db.conn.set_trace_callback(None)
    for sql in plans:
        if "FROM photos" not in sql:
            continue
        detail = " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql.replace("?", "0")).fetchall())
        # Each a search of an index range, never a walk of the table or of a whole index.
        assert "SCAN photos" not in detail, (sql, detail)
