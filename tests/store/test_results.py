"""An analysis result becomes rows: what the rating and the burst step read back from them."""
from __future__ import annotations

import json
import time
from datetime import datetime

from starsort.analysis import rate
from starsort.config import Config
from starsort.store import results


def _photo(db) -> int:
    now = time.time()
    return db.execute("INSERT INTO photos (original_path, kind, state, queued_at, updated_at)"
                      " VALUES ('/in/a.JPG', 'jpeg', 'queued', ?, ?)", [now, now]).lastrowid


def _face(score: float, px: float, skipped: str | None = None) -> dict:
    return {"box": [0, 0, px, px], "landmarks": [], "probability": 0.99, "blur_score": score,
            "blurry": score < 10, "iso_score": score * 2, "dir_score": score, "judged_px": px,
            "skipped": skipped}


def _result(**kw) -> dict:
    r = {"phash": "ab37e44b9d60944b", "captured_at": "2025-05-17T14:30:02", "captured_subsec": None,
         "faces": [], "frame_score": 40.0, "stars": 4, "rated_on": "frame", "sharpness": 40.0,
         "signature": b"S1" + bytes((8, 8)) + bytes(64)}
    r.update(kw)
    return r


def test_the_stored_row_alone_rates_the_photo_as_the_worker_did(fresh_db):
    pid = _photo(fresh_db)
    faces = [_face(45.0, 400.0), _face(1.2, 150.0, "background"), _face(0.4, 40.0, "small")]
    results.store(fresh_db, pid, _result(faces=faces, stars=5, rated_on="faces"))
    row = fresh_db.execute("SELECT face_scores, face_px, frame_score, faces, blurry_faces, skipped_faces"
                           " FROM photos WHERE id = ?", [pid]).fetchone()
    stored = list(zip(json.loads(row[0]), json.loads(row[1])))
    assert rate.stars_for(stored, row[2], Config()) == (5, "faces")
    assert row[3:] == (3, 0, 2)                 # a skipped blurry face is not a blurry face of the photo
    kept = fresh_db.execute("SELECT blur_score, iso_score, dir_score, judged_px, skipped FROM faces"
                            " WHERE photo_id = ? ORDER BY id", [pid]).fetchall()
    assert kept == [(45.0, 90.0, 45.0, 400.0, None), (1.2, 2.4, 1.2, 150.0, "background"),
                    (0.4, 0.8, 0.4, 40.0, "small")]


def test_sub_seconds_refine_the_capture_time_and_mark_it_precise(fresh_db):
    whole = datetime.fromisoformat("2025-05-17T14:30:02").timestamp()
    for subsec, ts, flag in (("35", whole + 0.35, 1), ("5", whole + 0.5, 1), (None, whole, 0)):
        pid = _photo(fresh_db)
        results.store(fresh_db, pid, _result(captured_subsec=subsec))
        assert fresh_db.execute("SELECT captured_ts, captured_subsec FROM photos WHERE id = ?",
                                [pid]).fetchone() == (ts, flag)


def test_the_signature_is_kept_beside_the_photo_and_dropped_when_a_new_analysis_has_none(fresh_db):
    pid = _photo(fresh_db)
    results.store(fresh_db, pid, _result())
    assert fresh_db.execute("SELECT length(data) FROM signatures WHERE photo_id = ?", [pid]).fetchone() == (68,)
    results.store(fresh_db, pid, _result(signature=None))
    assert fresh_db.execute("SELECT count(*) FROM signatures WHERE photo_id = ?", [pid]).fetchone() == (0,)
