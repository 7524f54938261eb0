"""`starsort report` and `starsort status`: read-only views of the database.

Both open the database read-only from their own process, so they can run while
the service writes (WAL lets readers and the writer proceed together).
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from typing import Any, Iterator

from sqlite_utils import Database

from . import duplicates

# The report's columns are a contract: scripts and the checks rely on them.
COLUMNS = (
    "original_path", "current_path", "pair_path",
    "kind", "state", "error",
    "stars", "faces", "blurry_faces", "face_scores", "frame_score",
    "phash", "cluster_id", "is_pick",
    "captured_at", "camera_model",
    # Added later, so at the end: scripts that read columns by position keep working.
    "exif_ok", "exif_missing", "exif_problems", "duplicate_of",
    "rated_on",
    "decided_by", "rejected", "machine_stars",
    "skipped_faces",
)

# In CSV a list is one cell, its items joined by this; JSON keeps lists.
LIST_SEPARATOR = "; "

# Internal states mapped onto the report's four: a photo being filed is still queued.
_STATE = {"queued": "queued", "analysed": "queued", "filing": "queued",
          "done": "done", "quarantined": "quarantined", "failed": "failed",
          # A byte-identical copy of a photo already filed (duplicates.on_import: skip).
          "duplicate": "duplicate"}


def rows(db: Database, duplicate_distance: int = 2) -> Iterator[dict[str, Any]]:
    """One row per photo in starsort's care. A photo `undo` put back is not (its row
    is history, and becomes the photo's row again if it lands again)."""
    dupes = duplicates.duplicate_of(db, duplicate_distance)
    dupes.update(duplicates.copy_of(db))
    for r in db.query("SELECT * FROM photos WHERE state != 'undone' ORDER BY id"):
        missing = json.loads(r["exif_missing"]) if r["exif_missing"] is not None else None
        problems = json.loads(r["exif_problems"]) if r["exif_problems"] else []
        done = r["state"] == "done"
        kind = r["kind"] if r["kind"] in ("jpeg", "raw") else ("raw" if r["pair_original_path"] else "jpeg")
        yield {
            "original_path": r["original_path"],
            "current_path": r["current_path"] or r["original_path"],
            "pair_path": r["pair_path"] or r["pair_original_path"] or "",
            "kind": kind,
            "state": _STATE.get(r["state"], r["state"]),
            "error": _gone(r) or r["error"] or "",
            "stars": r["stars"] if done else None,
            "faces": r["faces"],
            "blurry_faces": r["blurry_faces"],
            "face_scores": r["face_scores"] or "",
            "frame_score": r["frame_score"],
            "phash": r["phash"] or "",
            "cluster_id": r["cluster_id"],
            "is_pick": r["is_pick"] if r["phash"] else None,
            "captured_at": r["captured_at"] or "",
            "camera_model": r["camera_model"] or "",
            # None when the photo was never analysed (quarantined, queued, or
            # analysed before EXIF validation existed).
            "exif_ok": None if missing is None else int(not missing and not problems),
            "exif_missing": missing,
            "exif_problems": problems if missing is not None else None,
            "duplicate_of": dupes.get(r["id"], ""),
            "rated_on": (r["rated_on"] or "") if r["stars"] is not None else "",
            # Whose the stars are: the machine's, or the photographer's (the review
            # page, a move between star folders); a reject is in rejected/.
            "decided_by": r["decided_by"] if done else "",
            "rejected": int(bool(r["rejected"])) if done else None,
            "machine_stars": r["machine_stars"] if done else None,
            # Faces recorded but not counted for the stars (too small to judge, or in the
            # background); empty for a photo analysed before faces were skipped.
            "skipped_faces": r["skipped_faces"],
        }


def _gone(r: dict) -> str | None:
    """Why a filed photo's row no longer matches the disk, if it does not."""
    if r["state"] not in ("done", "quarantined", "duplicate") or not r["current_path"]:
        return None
    if os.path.lexists(r["current_path"]):
        return None
    return f"no longer at {r['current_path']}: moved or deleted outside starsort"


def render(db: Database, fmt: str, duplicate_distance: int = 2) -> str:
    data = list(rows(db, duplicate_distance))
    if fmt == "json":
        for d in data:
            if d["face_scores"]:
                d["face_scores"] = json.loads(d["face_scores"])
        return json.dumps(data, indent=2) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for d in data:
        w.writerow({k: "" if v is None else LIST_SEPARATOR.join(v) if isinstance(v, list) else v
                    for k, v in d.items()})
    return buf.getvalue()


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(db: Database) -> dict[str, Any]:
    by_state = {s: 0 for s in ("queued", "done", "quarantined", "failed", "duplicate")}
    undone = 0
    for state, n in db.execute("SELECT state, count(*) FROM photos GROUP BY state"):
        if state == "undone":
            undone = n   # back where they came from: history, not photos in starsort's care
            continue
        key = _STATE.get(state, state)
        by_state[key] = by_state.get(key, 0) + n
    by_stars = {str(s): 0 for s in range(1, 6)}
    for stars, n in db.execute("SELECT stars, count(*) FROM photos WHERE state = 'done' GROUP BY stars"):
        if stars is not None:
            by_stars[str(stars)] = n
    waiting = db.execute("SELECT count(*) FROM inbox").fetchone()[0]
    last = db.execute("SELECT at, message FROM events WHERE level IN ('ERROR', 'WARNING')"
                      " ORDER BY id DESC LIMIT 1").fetchone()
    svc = next(iter(db.query("SELECT * FROM service WHERE id = 1")), None)
    now = time.time()
    running = bool(svc and svc["stopped_at"] is None and _pid_alive(svc["pid"])
                   and svc["heartbeat_at"] and now - svc["heartbeat_at"] < 60)
    # Photos that reached their folder in the last minute: the pace of a shoot.
    recent = db.execute("SELECT count(*) FROM photos WHERE updated_at > ? AND state IN"
                        " ('done', 'quarantined', 'duplicate')", (now - 60,)).fetchone()[0]
    out: dict[str, Any] = {
        "running": running,
        "pid": svc["pid"] if svc and running else None,
        "uptime_seconds": round(now - svc["started_at"]) if svc and running else None,
        "queue_depth": waiting + by_state["queued"],
        "settling": waiting,
        "photos": by_state,
        "stars": by_stars,
        "undone": undone,
        "last_error": None if last is None else {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(last[0])), "message": last[1]},
        "warnings": [],
        "photos_per_second": round(recent / 60, 2),
        "review_port": svc["review_port"] if svc and running and "review_port" in svc.keys() else None,
    }
    if svc and svc["running_as_root"]:
        out["warnings"].append("the service runs as root; run it as the photographer's user")
    return out


def format_status(s: dict[str, Any]) -> str:
    lines = []
    for w in s["warnings"]:
        lines.append(f"WARNING: {w}")
    if s["running"]:
        up = s["uptime_seconds"]
        lines.append(f"running (pid {s['pid']}), up {up // 3600}h {up % 3600 // 60}m {up % 60}s")
    else:
        lines.append("not running")
    if s.get("paused"):
        lines.append(f"intake PAUSED since {s.get('paused_since') or '?'}: new files are recorded, nothing is"
                     " analysed or filed (`starsort resume`)")
    for p in s.get("problems") or []:
        lines.append(f"PROBLEM: {p}")
    lines.append(f"queue depth: {s['queue_depth']} ({s['settling']} settling);"
                 f" {s.get('photos_per_second', 0):g} photos/s over the last minute")
    counts = {k: v for k, v in s["photos"].items() if k != "duplicate"}
    lines.append("photos: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                 + (f" (and {s['undone']} put back by undo)" if s.get("undone") else ""))
    if s["photos"].get("duplicate"):
        lines.append(f"skipped: {s['photos']['duplicate']} copies of photos already filed"
                     " (duplicates.on_import: skip)")
    lines.append("stars:  " + ", ".join(f"{k}★ {v}" for k, v in s["stars"].items()))
    if s.get("review_port"):
        lines.append(f"review page: http://127.0.0.1:{s['review_port']}/ (`starsort review` opens it)")
    for key, v in (s.get("settings") or {}).items():
        lines.append(f"{key}: {v['value']:g}, set from the review page (config.yaml says {v['config_value']:g})")
    if s["last_error"]:
        lines.append(f"last error: {s['last_error']['at']} {s['last_error']['message']}")
    else:
        lines.append("last error: none")
    return "\n".join(lines) + "\n"
