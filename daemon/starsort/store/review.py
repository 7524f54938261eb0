"""What the review page reads: photos as the JSON API gives them, the filters' counts, the
changes since a point, and the threshold what-if. Read-only: the page never writes.

A photo's `verdict` is the machine's call as the grid shows it: `borderline`
when a counted face score lies within +-25 % of `blur.threshold` (for a
photo without faces, the frame score within +-25 % of
`blur.frame_threshold`): the best candidates to overrule. Otherwise `sharp`
for 3 stars and up, `blurry` below.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

from sqlite_utils import Database

from ..analysis import rate
from ..config import Config

BORDERLINE = 0.25
FILTERS = ("rejected", "picks", "unreviewed", "borderline", "quarantined")
STATES = ("queued", "done", "quarantined", "failed", "duplicate")

# Internal states as the API names them (a photo being filed is still queued).
_STATE = {"queued": "queued", "analysed": "queued", "filing": "queued", "done": "done",
          "quarantined": "quarantined", "failed": "failed", "duplicate": "duplicate", "undone": "undone"}


def _borderline_sql(cfg: Config) -> tuple[str, dict]:
    # A face counts when rate.skip_reasons would count it: no width stored, or
    # at least blur.min_face_px and background_face_ratio of the largest face.
    t, ft = cfg.blur.threshold, cfg.blur.frame_threshold
    sql = ("(CASE WHEN p.rated_on = 'frame' THEN p.frame_score BETWEEN :flo AND :fhi"
           " ELSE EXISTS (SELECT 1 FROM json_each(p.face_scores) s WHERE s.value BETWEEN :lo AND :hi"
           " AND coalesce(json_extract(p.face_px, '$[' || s.key || ']') >= max(:min_px, :ratio *"
           " (SELECT max(value) FROM json_each(p.face_px))), 1)) END)")
    return sql, {"lo": t * (1 - BORDERLINE), "hi": t * (1 + BORDERLINE),
                 "flo": ft * (1 - BORDERLINE), "fhi": ft * (1 + BORDERLINE),
                 "min_px": cfg.blur.min_face_px, "ratio": cfg.stars.background_face_ratio}


def stored_faces(face_scores: str | None, face_px: str | None) -> list[tuple[float | None, float | None]]:
    """A photo row's faces as `analysis.rate` takes them: (score, width judged), the width
    None for a photo analysed before widths were stored (such a face always counts)."""
    scores = json.loads(face_scores or "[]")
    pxs = json.loads(face_px or "[]")
    return [(s, pxs[i] if i < len(pxs) else None) for i, s in enumerate(scores)]


def _where(cfg: Config, stars: int | None, state: str | None, filter_: str | None,
           reason: str | None) -> tuple[list[str], dict]:
    where, args = ["p.state != 'undone'"], {}
    if state is not None:
        where.append("p.state IN (SELECT value FROM json_each(:states))")
        args["states"] = json.dumps([k for k, v in _STATE.items() if v == state])
    if stars is not None:
        where += ["p.state = 'done'", "p.stars = :stars", "NOT p.rejected"]
        args["stars"] = stars
    if filter_ == "rejected":
        where.append("p.rejected")
    elif filter_ == "picks":
        where.append("p.is_pick AND p.cluster_id IS NOT NULL AND (SELECT size FROM clusters WHERE id = p.cluster_id) >= 2")
    elif filter_ == "unreviewed":
        where += ["p.state = 'done'", "p.decided_by = 'machine'"]
    elif filter_ == "borderline":
        sql, a = _borderline_sql(cfg)
        where += ["p.state = 'done'", sql]
        args.update(a)
    elif filter_ == "quarantined":
        where.append("p.state = 'quarantined'")
    if reason is not None:
        where.append("p.error = :reason")
        args["reason"] = reason
    return where, args


def photos(db: Database, cfg: Config, *, limit: int = 200, after: int | None = None, stars: int | None = None,
           state: str | None = None, filter_: str | None = None, reason: str | None = None,
           person: int | None = None) -> list[dict[str, Any]]:
    """Newest first; `after` is the id of the last photo of the previous page; `person`: only
    the photos with a face of that person."""
    where, args = _where(cfg, stars, state, filter_, reason)
    if person is not None:
        where.append("p.id IN (SELECT f.photo_id FROM faces f JOIN face_people fp ON fp.face_id = f.id"
                     " WHERE fp.person_id = :person)")
        args["person"] = person
    if after is not None:
        where.append("p.id < :after")
        args["after"] = after
    rows = list(db.query(
        f"SELECT p.*, c.size AS burst_size, c.pick_by AS pick_by FROM photos p"
        f" LEFT JOIN clusters c ON c.id = p.cluster_id WHERE {' AND '.join(where)}"
        f" ORDER BY p.id DESC LIMIT :limit", {**args, "limit": limit}))
    return _shaped(db, cfg, rows)


def photo(db: Database, cfg: Config, photo_id: int) -> dict[str, Any] | None:
    rows = list(db.query("SELECT p.*, c.size AS burst_size, c.pick_by AS pick_by FROM photos p"
                         " LEFT JOIN clusters c ON c.id = p.cluster_id WHERE p.id = ?", [photo_id]))
    return _shaped(db, cfg, rows)[0] if rows else None


def burst(db: Database, cfg: Config, cluster_id: int) -> list[dict[str, Any]]:
    """The frames of one burst, in the order they were taken."""
    rows = list(db.query("SELECT p.*, c.size AS burst_size, c.pick_by AS pick_by FROM photos p"
                         " JOIN clusters c ON c.id = p.cluster_id WHERE p.cluster_id = ? AND p.state != 'undone'"
                         " ORDER BY p.captured_ts, p.id", [cluster_id]))
    return _shaped(db, cfg, rows)


def changes(db: Database, cfg: Config, since: int, limit: int = 500) -> tuple[int, list[dict[str, Any]]]:
    """(the newest change number, the photos changed after `since`, oldest change first)."""
    newest = db.execute("SELECT n FROM change_counter WHERE id = 1").fetchone()[0]
    if newest <= since:
        return newest, []
    rows = list(db.query("SELECT p.*, c.size AS burst_size, c.pick_by AS pick_by FROM photos p"
                         " LEFT JOIN clusters c ON c.id = p.cluster_id WHERE p.seq > ? ORDER BY p.seq LIMIT ?",
                         [since, limit]))
    if len(rows) == limit:
        newest = rows[-1]["seq"]
    return newest, _shaped(db, cfg, rows)


def change_number(db: Database) -> int:
    return db.execute("SELECT n FROM change_counter WHERE id = 1").fetchone()[0]


def counts(db: Database, cfg: Config) -> dict[str, Any]:
    """How many photos each filter shows."""
    sql, args = _borderline_sql(cfg)
    r = next(iter(db.query(
        "SELECT count(*) AS all_, "
        + ", ".join(f"sum(p.state = 'done' AND NOT p.rejected AND p.stars = {s}) AS s{s}" for s in range(1, 6))
        + ", sum(p.rejected) AS rejected,"
        " sum(p.is_pick AND c.size >= 2) AS picks,"
        " sum(p.state = 'done' AND p.decided_by = 'machine') AS unreviewed,"
        f" sum(p.state = 'done' AND {sql}) AS borderline,"
        " sum(p.state = 'quarantined') AS quarantined,"
        " sum(p.state IN ('queued', 'analysed', 'filing')) AS queued"
        " FROM photos p LEFT JOIN clusters c ON c.id = p.cluster_id WHERE p.state != 'undone'", args)))
    reasons = [{"reason": reason, "count": n} for reason, n in db.execute(
        "SELECT error, count(*) FROM photos WHERE state = 'quarantined' GROUP BY error ORDER BY count(*) DESC")]
    return {"all": r["all_"] or 0, "stars": {str(s): r[f"s{s}"] or 0 for s in range(1, 6)},
            "rejected": r["rejected"] or 0, "picks": r["picks"] or 0, "unreviewed": r["unreviewed"] or 0,
            "borderline": r["borderline"] or 0, "quarantined": r["quarantined"] or 0, "queued": r["queued"] or 0,
            "quarantine_reasons": reasons}


def rerate_changes(db: Database, cfg: Config) -> list[tuple[int, int, int]]:
    """(photo id, stars now, stars under `cfg`) for every filed photo the machine decided whose
    stars `cfg` would change, from the stored scores alone: the threshold what-if and
    `starsort rerate --dry-run` are this one list."""
    out = []
    for photo_id, stars, face_scores, face_px, frame_score in db.execute(
            "SELECT id, stars, face_scores, face_px, frame_score FROM photos WHERE state = 'done'"
            " AND decided_by = 'machine' AND rated_on IS NOT NULL AND stars IS NOT NULL"):
        new, _ = rate.stars_for(stored_faces(face_scores, face_px), frame_score, cfg)
        if new != stars:
            out.append((photo_id, stars, new))
    return out


def _shaped(db: Database, cfg: Config, rows: list[dict]) -> list[dict[str, Any]]:
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    faces: dict[int, list[dict]] = {i: [] for i in ids}
    for f in db.query("SELECT photo_id, x1, y1, x2, y2, blur_score, blurry FROM faces WHERE photo_id IN"
                      " (SELECT value FROM json_each(?)) ORDER BY id", [json.dumps(ids)]):
        score = f["blur_score"]
        faces[f["photo_id"]].append({
            "box": [f["x1"], f["y1"], f["x2"], f["y2"]],
            "score": score,
            "blurry": None if score is None else score < cfg.blur.threshold,
        })
    for r in rows:
        # Whether each face counted, under the config in force (not the one it was analysed under).
        found = faces[r["id"]]
        reasons = rate.skip_reasons(
            [(s or 0.0, px) for s, px in stored_faces(r["face_scores"], r.get("face_px"))], cfg)
        for face, reason in zip(found, reasons):
            face["skipped"] = reason
            if reason is not None:
                face["blurry"] = None
    return [_shape(r, faces[r["id"]], cfg) for r in rows]


def verdict(row: dict, faces: Sequence[tuple[float | None, float | None]], cfg: Config) -> str | None:
    """sharp | blurry | borderline (a counted face, or the frame, within BORDERLINE of its threshold)."""
    if row["state"] != "done" or row.get("machine_stars") is None:
        return None
    t, ft = cfg.blur.threshold, cfg.blur.frame_threshold
    if row["rated_on"] == "frame":
        near = row["frame_score"] is not None and abs(row["frame_score"] - ft) <= BORDERLINE * ft
    else:
        reasons = rate.skip_reasons([(s or 0.0, px) for s, px in faces], cfg)
        near = any(s is not None and reason is None and abs(s - t) <= BORDERLINE * t
                   for (s, _), reason in zip(faces, reasons))
    if near:
        return "borderline"
    return "sharp" if row["machine_stars"] >= 3 else "blurry"


def _shape(r: dict, faces: list[dict], cfg: Config) -> dict[str, Any]:
    stored = stored_faces(r["face_scores"], r.get("face_px"))
    why = None
    if r["rated_on"] is not None:
        why = rate.explain(stored, r["frame_score"], cfg)
        if r["decided_by"] == "photographer":
            decided = "rejected" if r["rejected"] else f"{r['stars']}★"
            why = f"machine: {why}; photographer: {decided}"
    return {
        "id": r["id"],
        "original_path": r["original_path"],
        "current_path": r["current_path"],
        "pair_path": r["pair_path"],
        "state": _STATE.get(r["state"], r["state"]),
        "stars": r["stars"] if r["state"] == "done" else None,
        "machine_stars": r["machine_stars"],
        "decided_by": r["decided_by"],
        "rejected": bool(r["rejected"]),
        "cluster_id": r["cluster_id"],
        "is_pick": bool(r["is_pick"]) and r["cluster_id"] is not None,
        "burst_size": r.get("burst_size") or (1 if r["cluster_id"] is not None else 0),
        "pick_by": r.get("pick_by"),
        "faces": faces,
        "rated_on": r["rated_on"],
        "frame_score": r["frame_score"],
        "verdict": verdict(r, stored, cfg),
        "why": why,
        "name": os.path.basename(r["current_path"] or r["original_path"]),
        "kind": r["kind"],
        "captured_at": r["captured_at"],
        "camera_model": r["camera_model"],
        "width": r["width"],
        "height": r["height"],
        "error": r["error"],
        "preview": r["preview"] or None,
        "seq": r["seq"],
    }
