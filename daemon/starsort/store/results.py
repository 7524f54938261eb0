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
from . import photos


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
        "blurry_faces": sum(1 for f in faces if f["blurry"]),
        "face_scores": json.dumps([f["blur_score"] for f in faces]),
        "frame_score": r.get("frame_score"),
        "sharpness": r.get("sharpness"),
        "phash": r.get("phash"),
        "b0": b[0], "b1": b[1], "b2": b[2], "b3": b[3],
        "captured_ts": _epoch(r.get("captured_at")),
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
    db.execute("DELETE FROM faces WHERE photo_id = ?", (photo_id,))
    for f in r.get("faces") or []:
        x1, y1, x2, y2 = f["box"]
        db.execute(
            "INSERT INTO faces (photo_id, x1, y1, x2, y2, landmarks, probability, blur_score, blurry)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (photo_id, x1, y1, x2, y2, json.dumps(f["landmarks"]), f["probability"],
             f["blur_score"], None if f["blurry"] is None else int(f["blurry"])))
    photos.analysed(db, photo_id, photo_columns(r))


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
