"""An analysis result becomes rows: the photo's columns and its faces.

Adding a stage that produces something to keep means: its module in
`analysis/`, a migration for its columns, and one entry here.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from ..analysis.phash import bands
from . import people, photos


def photo_columns(r: dict[str, Any]) -> dict[str, Any]:
    """The `photos` columns of one result (Job.result())."""
    faces = r.get("faces") or []
    w, h = (r.get("original_size") or (None, None))
    b = bands(r["phash"]) if r.get("phash") else (None,) * 4
    return {
        "stars": r["stars"],
        "machine_stars": r["stars"],
        "rated_on": r["rated_on"],
        "faces": len(faces),
        # Of the faces that counted: a skipped face's score does not rate the photo.
        "blurry_faces": sum(1 for f in faces if f["blurry"] and not f.get("skipped")),
        "face_scores": json.dumps([f["blur_score"] for f in faces]),
        "face_px": json.dumps([f.get("judged_px") for f in faces]),
        "skipped_faces": sum(1 for f in faces if f.get("skipped")),
        "frame_score": r.get("frame_score"),
        "sharpness": r.get("sharpness"),
        "phash": r.get("phash"),
        "b0": b[0], "b1": b[1], "b2": b[2], "b3": b[3],
        "captured_ts": _epoch(r.get("captured_at"), r.get("captured_subsec")),
        "captured_subsec": int(_fraction(r.get("captured_subsec")) is not None and bool(r.get("captured_at"))),
        "captured_at": r.get("captured_at"),
        "camera_model": r.get("camera_model"),
        "decode_source": r.get("decode_source"),
        "width": w,
        "height": h,
        "updated_at": time.time(),
        "exif": json.dumps(r.get("exif") or {}),
        "exif_missing": None if r.get("exif_missing") is None else json.dumps(r["exif_missing"]),
        "exif_problems": json.dumps(r.get("exif_problems") or []),
        "preview": r.get("preview"),
    }


def store(db: Database, photo_id: int, r: dict[str, Any]) -> None:
    """Write one result; the caller holds the transaction (the burst step joins it)."""
    # A new analysis replaces the photo's faces; the photographer's confirmations
    # follow each face to its new row (same place), nothing else is kept.
    kept = people.forget_faces_of(db, photo_id)
    db.execute("DELETE FROM faces WHERE photo_id = ?", (photo_id,))
    for f in r.get("faces") or []:
        x1, y1, x2, y2 = f["box"]
        cur = db.execute(
            "INSERT INTO faces (photo_id, x1, y1, x2, y2, landmarks, probability, blur_score, blurry,"
            " iso_score, dir_score, judged_px, skipped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (photo_id, x1, y1, x2, y2, json.dumps(f["landmarks"]), f["probability"],
             f["blur_score"], None if f["blurry"] is None else int(f["blurry"]),
             f.get("iso_score"), f.get("dir_score"), f.get("judged_px"), f.get("skipped")))
        if f.get("embedding"):
            people.add_vector(db, cur.lastrowid, f["embedded_by"], f["embedding"])
    people.carry_over(db, photo_id, kept)
    photos.analysed(db, photo_id, photo_columns(r))
    if r.get("signature"):
        db.execute("INSERT OR REPLACE INTO signatures (photo_id, data) VALUES (?, ?)", (photo_id, r["signature"]))
    else:
        db.execute("DELETE FROM signatures WHERE photo_id = ?", (photo_id,))


def _epoch(iso: str | None, subsec: str | None = None) -> float | None:
    if not iso:
        return None
    try:
        ts = datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
    return ts + (_fraction(subsec) or 0.0)


def _fraction(subsec: str | None) -> float | None:
    """EXIF SubSecTimeOriginal as a fraction of a second: its digits follow the decimal point
    ("05" is 0.05 s, "5" is 0.5 s); None when absent or not digits."""
    digits = (subsec or "").strip()
    if not digits or not digits.isdigit():
        return None
    return float("0." + digits)
