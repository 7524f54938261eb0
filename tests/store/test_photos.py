"""A photo's states: every transition is one function of store/photos.py, and only those change state."""
from __future__ import annotations

import re
from pathlib import Path

from starsort.store import photos

PACKAGE = Path(__file__).resolve().parents[2] / "daemon" / "starsort"


def test_only_store_photos_changes_a_photos_state():
    writes = re.compile(r"UPDATE\s+photos\s+SET[^\"']*\bstate\s*=|INSERT\s+INTO\s+photos", re.I)
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "photos.py" and writes.search(p.read_text())]
    assert offenders == []


def test_a_photo_goes_from_queued_through_analysed_and_filing_to_done(fresh_db):
    db = fresh_db
    pid = photos.queue(db, original="/in/DSC1.JPG", pair=None, kind="jpeg", size=10, mtime_ns=1, now=1.0)
    assert photos.get(db, pid)["state"] == "queued"
    photos.analysed(db, pid, {"stars": 4, "rated_on": "faces"})
    assert (photos.get(db, pid)["state"], photos.get(db, pid)["stars"]) == ("analysed", 4)
    photos.start_filing(db, pid, 2.0)
    assert photos.get(db, pid)["state"] == "filing"
    photos.filed(db, pid, "done", "/lib/4-stars/DSC1.JPG", None, 3.0)
    row = photos.get(db, pid)
    assert (row["state"], row["current_path"]) == ("done", "/lib/4-stars/DSC1.JPG")
    photos.undone(db, pid, 4.0)
    row = photos.get(db, pid)
    assert (row["state"], row["current_path"]) == ("undone", "/in/DSC1.JPG")


def test_a_filing_error_sends_the_photo_back_to_analysed_with_its_reason_but_never_a_filed_one(fresh_db):
    db = fresh_db
    pid = photos.queue(db, original="/in/DSC2.JPG", pair=None, kind="jpeg", size=10, mtime_ns=1, now=1.0)
    photos.start_filing(db, pid, 2.0)
    photos.filing_failed(db, pid, "cannot file: disk full")
    assert (photos.get(db, pid)["state"], photos.get(db, pid)["error"]) == ("analysed", "cannot file: disk full")
    photos.filed(db, pid, "done", "/lib/x.JPG", None, 3.0)
    photos.filing_failed(db, pid, "late error")
    assert photos.get(db, pid)["state"] == "done"


def test_start_up_recovery_retries_failed_photos_and_unsticks_filings_without_a_journal(fresh_db):
    db = fresh_db
    failed = photos.queue(db, original="/in/a.JPG", pair=None, kind="jpeg", size=1, mtime_ns=1, now=1.0)
    photos.count_attempt(db, failed, "boom")
    photos.failed(db, failed, "boom", 2.0)
    stuck = photos.queue(db, original="/in/b.JPG", pair=None, kind="jpeg", size=1, mtime_ns=1, now=1.0)
    photos.start_filing(db, stuck, 2.0)
    photos.recover(db)
    assert (photos.get(db, failed)["state"], photos.get(db, failed)["attempts"]) == ("queued", 0)
    assert photos.get(db, stuck)["state"] == "analysed"


def test_a_raw_that_settles_after_its_jpeg_becomes_the_original(fresh_db):
    db = fresh_db
    pid = photos.queue(db, original="/in/DSC3.JPG", pair=None, kind="jpeg", size=1, mtime_ns=1, now=1.0)
    photos.raw_joins_jpeg(db, pid, raw="/in/DSC3.ARW", jpeg="/in/DSC3.JPG", size=9, mtime_ns=2, now=2.0)
    row = photos.get(db, pid)
    assert (row["original_path"], row["pair_original_path"], row["kind"]) == ("/in/DSC3.ARW", "/in/DSC3.JPG", "raw")
    assert photos.by_path(db, "/in/DSC3.JPG", ("queued",))["id"] == pid


def test_a_photo_that_lands_again_after_undo_keeps_its_one_row(fresh_db):
    db = fresh_db
    pid = photos.queue(db, original="/in/DSC4.JPG", pair=None, kind="jpeg", size=10, mtime_ns=1, now=1.0)
    photos.analysed(db, pid, {"stars": 2, "rated_on": "faces"})
    photos.filed(db, pid, "done", "/lib/2-stars/DSC4.JPG", None, 2.0)
    photos.undone(db, pid, 3.0)

    again = photos.queue(db, original="/in/DSC4.JPG", pair="/in/DSC4.ARW", kind="raw", size=20, mtime_ns=2, now=4.0)

    assert again == pid
    row = photos.get(db, pid)
    assert (row["state"], row["pair_original_path"], row["current_path"], row["queued_at"]) == (
        "queued", "/in/DSC4.ARW", None, 4.0)
    assert db.execute("SELECT count(*) FROM photos").fetchone()[0] == 1


def test_the_filed_photo_of_a_stem_is_found_in_any_case_by_index_ranges_not_by_reading_the_folder(fresh_db):
    # A card folder of 3,000 filed JPEGs: a late raw or sidecar asks for one stem.
    for i in range(3000):
        fresh_db.execute("INSERT INTO photos (original_path, kind, state, queued_at, updated_at)"
                         " VALUES (?, 'jpeg', 'done', 0, 0)", (f"/in/card/DSC{i:05d}.JPG",))
    fresh_db.execute("INSERT INTO photos (original_path, kind, state, queued_at, updated_at)"
                     " VALUES ('/in/card/DSC00042.1.JPG', 'jpeg', 'done', 0, 0)")
    fresh_db.execute("INSERT INTO photos (original_path, kind, state, queued_at, updated_at)"
                     " VALUES ('/in/card/sub/DSC00043.JPG', 'jpeg', 'done', 0, 0)")
    fresh_db.execute("ANALYZE")
    issued = []
    fresh_db.conn.set_trace_callback(issued.append)
    assert photos.filed_with_stem(fresh_db, "/in/card", "DSC00042")["original_path"] == "/in/card/DSC00042.JPG"
    assert photos.filed_with_stem(fresh_db, "/in/card", "dsc00042")["original_path"] == "/in/card/DSC00042.JPG"
    assert photos.filed_with_stem(fresh_db, "/in/card", "DSC99999") is None
    fresh_db.conn.set_trace_callback(None)
    for statement in [s for s in issued if s.startswith("SELECT")]:
        plan = " ".join(row[3] for row in fresh_db.execute("EXPLAIN QUERY PLAN " + statement).fetchall())
        assert "USING INDEX photos_original" in plan and "SCAN" not in plan, plan
    # Neither a photo of another folder nor one whose stem only begins the same.
    assert photos.filed_with_stem(fresh_db, "/in", "DSC00043") is None
    assert photos.filed_with_stem(fresh_db, "/in/card", "DSC00042.1")["original_path"] == "/in/card/DSC00042.1.JPG"


def test_the_re_import_check_reads_filed_photos_of_that_size_only_not_the_queue(fresh_db):
    # A card of uncompressed raws: every file has one byte count, and the queue holds thousands.
    for i in range(2000):
        photos.queue(fresh_db, original=f"/in/DSC{i:05d}.ARW", pair=None, kind="raw", size=24_000_000,
                     mtime_ns=1, now=1.0)
    done = photos.queue(fresh_db, original="/in/DONE.ARW", pair=None, kind="raw", size=24_000_000, mtime_ns=1,
                        now=1.0)
    photos.analysed(fresh_db, done, {"stars": 4, "rated_on": "faces"})
    photos.filed(fresh_db, done, "done", "/lib/4-stars/DONE.ARW", None, 2.0)
    for analyze in (False, True):
        if analyze:
            fresh_db.execute("ANALYZE")
        issued = []
        fresh_db.conn.set_trace_callback(issued.append)
        assert photos.filed_with_size(fresh_db, 24_000_000, 1)
        assert [r["id"] for r in photos.unhashed_with_size(fresh_db, 24_000_000)] == [done]
        assert photos.filed_with_hash(fresh_db, 24_000_000, "ab" * 32, 1) == []
        fresh_db.conn.set_trace_callback(None)
        for statement in [s for s in issued if s.startswith("SELECT")]:
            plan = " ".join(row[3] for row in fresh_db.execute("EXPLAIN QUERY PLAN " + statement).fetchall())
            assert "USING INDEX photos_filed_size_sha" in plan, (statement, plan)
