"""The report's columns are a contract; status counts what the service has done."""
from __future__ import annotations

import csv
import io
import json
import os
import time

from starsort.store import queries as report


def _row(db, **kw):
    now = time.time()
    base = dict(original_path="/in/a.JPG", kind="jpeg", state="queued", queued_at=now, updated_at=now)
    base.update(kw)
    cols = ", ".join(base)
    db.execute(f"INSERT INTO photos ({cols}) VALUES ({', '.join('?' * len(base))})", list(base.values()))


def test_the_csv_has_exactly_the_contract_columns_in_order(fresh_db):
    _row(fresh_db)
    header = next(csv.reader(io.StringIO(report.render(fresh_db, "csv"))))
    assert header == ["original_path", "current_path", "pair_path", "kind", "state", "error", "stars", "faces",
                      "blurry_faces", "face_scores", "frame_score", "phash", "cluster_id", "is_pick",
                      "captured_at", "camera_model", "exif_ok", "exif_missing", "exif_problems", "duplicate_of",
                      "rated_on", "decided_by", "rejected", "machine_stars", "skipped_faces"]


def test_the_report_says_whose_the_stars_are_and_what_the_machine_said(fresh_db):
    _row(fresh_db, original_path="/in/m.JPG", state="done", stars=4, machine_stars=4, rated_on="faces")
    _row(fresh_db, original_path="/in/p.JPG", state="done", stars=2, machine_stars=5, rated_on="faces",
         decided_by="photographer")
    _row(fresh_db, original_path="/in/r.JPG", state="done", stars=5, machine_stars=5, rated_on="faces",
         decided_by="photographer", rejected=1)
    rows = {r["original_path"]: (r["stars"], r["decided_by"], r["rejected"], r["machine_stars"])
            for r in csv.DictReader(io.StringIO(report.render(fresh_db, "csv")))}
    assert rows == {"/in/m.JPG": ("4", "machine", "0", "4"), "/in/p.JPG": ("2", "photographer", "0", "5"),
                    "/in/r.JPG": ("5", "photographer", "1", "5")}


def test_skipped_faces_counts_the_faces_recorded_but_not_counted_for_the_stars(fresh_db):
    _row(fresh_db, original_path="/in/g.JPG", state="done", stars=4, rated_on="frame", faces=3, blurry_faces=0,
         skipped_faces=3)
    _row(fresh_db, original_path="/in/old.JPG", state="done", stars=5, rated_on="faces", faces=1, blurry_faces=0)
    rows = {r["original_path"]: r["skipped_faces"] for r in csv.DictReader(io.StringIO(report.render(fresh_db, "csv")))}
    # Empty for a photo analysed before faces could be skipped.
    assert rows == {"/in/g.JPG": "3", "/in/old.JPG": ""}


def test_rated_on_says_whether_faces_or_the_frame_gave_the_stars(fresh_db):
    _row(fresh_db, original_path="/in/f.JPG", state="done", stars=4, rated_on="faces")
    _row(fresh_db, original_path="/in/n.JPG", state="done", stars=3, rated_on="frame")
    _row(fresh_db, original_path="/in/q.JPG", state="quarantined", error="empty file")
    rows = {r["original_path"]: r["rated_on"] for r in csv.DictReader(io.StringIO(report.render(fresh_db, "csv")))}
    assert rows == {"/in/f.JPG": "faces", "/in/n.JPG": "frame", "/in/q.JPG": ""}


def test_a_filed_pair_reports_one_row_with_its_pair_and_its_analysis(fresh_db):
    _row(fresh_db, original_path="/in/D.ARW", pair_original_path="/in/D.JPG", kind="raw", state="done",
         current_path="/lib/4-stars/D.ARW", pair_path="/lib/4-stars/D.JPG", stars=4, faces=4, blurry_faces=1,
         face_scores="[30.1, 22.0, 41.5, 3.2]", frame_score=55.0, phash="ab37e44b9d60944b", cluster_id=7,
         is_pick=1, captured_at="2024-05-01T10:00:00", camera_model="ILCE-7M3")
    [row] = json.loads(report.render(fresh_db, "json"))
    assert row["pair_path"] == "/lib/4-stars/D.JPG" and row["kind"] == "raw" and row["state"] == "done"
    assert row["face_scores"] == [30.1, 22.0, 41.5, 3.2] and row["stars"] == 4 and row["is_pick"] == 1


def test_photos_in_flight_report_as_queued_and_unanalysed_columns_stay_empty(fresh_db):
    _row(fresh_db, state="filing")
    [row] = list(csv.DictReader(io.StringIO(report.render(fresh_db, "csv"))))
    assert row["state"] == "queued" and row["current_path"] == "/in/a.JPG"
    assert row["stars"] == row["phash"] == row["is_pick"] == row["faces"] == ""


def test_status_counts_states_stars_and_shows_the_last_error_and_a_root_warning(fresh_db):
    _row(fresh_db, state="done", stars=5)
    _row(fresh_db, state="done", stars=2)
    _row(fresh_db, state="quarantined", error="empty file")
    _row(fresh_db, state="queued")
    fresh_db.execute("INSERT INTO inbox (path, seen_at) VALUES ('/in/b.JPG', 0)")
    fresh_db.execute("INSERT INTO events (at, level, message) VALUES (?, 'WARNING', 'quarantined /in/x: empty file')",
                     (time.time(),))
    now = time.time()
    fresh_db.execute("INSERT INTO service (id, pid, started_at, heartbeat_at, running_as_root) VALUES (1, ?, ?, ?, 1)",
                     (os.getpid(), now - 3700, now))
    s = report.status(fresh_db)
    assert s["photos"] == {"queued": 1, "done": 2, "quarantined": 1, "failed": 0, "duplicate": 0}
    assert s["stars"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert s["queue_depth"] == 2 and s["running"] and s["uptime_seconds"] >= 3700
    assert s["last_error"]["message"].endswith("empty file")
    text = report.format_status(s)
    assert text.startswith("WARNING: the service runs as root") and "up 1h" in text


def test_status_says_not_running_when_the_process_is_gone(fresh_db):
    fresh_db.execute("INSERT INTO service (id, pid, started_at, heartbeat_at) VALUES (1, 999999999, 0, 0)")
    assert report.status(fresh_db)["running"] is False


def test_the_report_flags_a_photo_whose_exif_lacks_date_time_original(fresh_db):
    _row(fresh_db, original_path="/in/ok.JPG", state="done", stars=4, exif_missing="[]", exif_problems="[]")
    _row(fresh_db, original_path="/in/nodate.JPG", state="done", stars=4,
         exif_missing='["DateTimeOriginal"]', exif_problems="[]")
    _row(fresh_db, original_path="/in/zero.JPG", state="done", stars=4, exif_missing="[]",
         exif_problems='["ExposureTime is 0/1 (zero or negative)", "DateTimeOriginal 1980-01-01T00:00:00 is before 1990"]')
    ok, nodate, zero = csv.DictReader(io.StringIO(report.render(fresh_db, "csv")))
    assert (ok["exif_ok"], ok["exif_missing"], ok["exif_problems"]) == ("1", "", "")
    assert (nodate["exif_ok"], nodate["exif_missing"]) == ("0", "DateTimeOriginal")
    assert zero["exif_ok"] == "0" and zero["exif_problems"].split("; ")[0] == "ExposureTime is 0/1 (zero or negative)"
    assert json.loads(report.render(fresh_db, "json"))[1]["exif_missing"] == ["DateTimeOriginal"]


def test_a_photo_never_checked_has_empty_exif_columns(fresh_db):
    _row(fresh_db, state="quarantined", error="empty file")
    [row] = json.loads(report.render(fresh_db, "json"))
    assert row["exif_ok"] is None and row["exif_missing"] is None and row["duplicate_of"] == ""


def test_duplicate_of_names_the_first_photo_of_each_duplicate_group(fresh_db):
    # 0 and 2 bits from the first; the third is 30 bits away from both.
    for name, phash in [("a", "ab37e44b9d60944b"), ("b", "ab37e44b9d60944e"), ("c", "54c81bb4629f6bb4")]:
        _row(fresh_db, original_path=f"/in/{name}.JPG", current_path=f"/lib/4-stars/{name}.JPG", state="done",
             stars=4, phash=phash)
    rows = json.loads(report.render(fresh_db, "json", duplicate_distance=2))
    assert [r["duplicate_of"] for r in rows] == ["", "/lib/4-stars/a.JPG", ""]
    assert [r["duplicate_of"] for r in json.loads(report.render(fresh_db, "json", duplicate_distance=1))] == ["", "", ""]


def test_the_report_leaves_out_photos_undo_put_back_and_flags_a_filed_file_that_is_gone(fresh_db, tmp_path):
    kept = tmp_path / "5-stars" / "kept.JPG"
    kept.parent.mkdir()
    kept.write_bytes(b"jpeg")
    _row(fresh_db, original_path="/in/kept.JPG", current_path=str(kept), state="done", stars=5)
    _row(fresh_db, original_path="/in/gone.JPG", current_path=str(tmp_path / "quarantine" / "gone.JPG"),
         state="quarantined", error="empty file")
    _row(fresh_db, original_path="/in/back.JPG", current_path="/in/back.JPG", state="undone", stars=3)

    rows = {r["original_path"]: r for r in csv.DictReader(io.StringIO(report.render(fresh_db, "csv")))}

    assert sorted(rows) == ["/in/gone.JPG", "/in/kept.JPG"]
    assert rows["/in/kept.JPG"]["error"] == ""
    assert rows["/in/gone.JPG"]["error"].startswith("no longer at ")
    s = report.status(fresh_db)
    assert s["photos"] == {"queued": 0, "done": 1, "quarantined": 1, "failed": 0, "duplicate": 0} and s["undone"] == 1
    assert "put back by undo" in report.format_status(s)
