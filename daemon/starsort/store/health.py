"""How the service is doing, in one word and one line: what the tray, the
notifications and the service manager's STATUS= show.

    down     the service is not running, or its heartbeat is stale
    error    a problem stands now (below); the line is the first one
    paused   intake is paused (starsort.pause)
    working  photos are queued or settling
    idle     nothing to do

A problem is a condition that holds *now*, read from the database and the
disk, so it clears by itself when the condition does: a full library while
photos wait to be filed into it, a missing library, a run of quarantines
(the card reader or the camera is producing broken files). Old errors in
the event log are history, not problems; `status` shows the last one apart.
"""
from __future__ import annotations

import errno
import os
import time
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from .. import pause
from ..config import Config

# This many photos in a row ending in quarantine, the newest within
# QUARANTINE_RUN_RECENT seconds, is a problem: one broken file is the file's
# fault; five in a row is the card, the reader or the camera.
QUARANTINE_RUN = 5
QUARANTINE_RUN_RECENT = 600.0
_ENOSPC = f"[Errno {errno.ENOSPC}]"


def problems(db: Database, cfg: Config) -> list[str]:
    """The conditions that stand now, most urgent first, each a line a photographer reads."""
    return [text for _, text in keyed_problems(db, cfg)]


def keyed_problems(db: Database, cfg: Config) -> list[tuple[str, str]]:
    """(kind, line) for each standing problem; the kind stays the same while the line's counts change."""
    out = []
    library = str(cfg.library)
    if not os.path.isdir(library):
        out.append(("library missing", f"library missing: {library} (is its disk mounted?)"))
    full = db.execute("SELECT count(*) FROM photos WHERE state = 'analysed' AND error LIKE ?",
                      (f"%{_ENOSPC}%",)).fetchone()[0]
    if full:
        out.append(("library full", f"library full: {full:,} photo{'s' if full != 1 else ''} waiting"))
    stuck = db.execute("SELECT count(*), min(error) FROM photos WHERE state = 'analysed'"
                       " AND error LIKE 'cannot file into %' AND error NOT LIKE ?", (f"%{_ENOSPC}%",)).fetchone()
    if stuck[0] and not out:
        out.append(("cannot file", f"cannot file {stuck[0]:,} photo{'s' if stuck[0] != 1 else ''}: {stuck[1]}"))
    run, newest, reason = _quarantine_run(db)
    if run >= QUARANTINE_RUN and newest is not None and time.time() - newest < QUARANTINE_RUN_RECENT:
        out.append(("quarantines", f"{run} photos quarantined in a row (the last: {reason})"))
    return out


def _quarantine_run(db: Database) -> tuple[int, float | None, str | None]:
    """How many photos were quarantined since the newest one filed well; when the newest was, and why."""
    ok = max((db.execute("SELECT max(updated_at) FROM photos WHERE state = ?", (state,)).fetchone()[0] or 0.0)
             for state in ("done", "duplicate"))
    run, newest = db.execute("SELECT count(*), max(updated_at) FROM photos WHERE state = 'quarantined'"
                             " AND updated_at > ?", (ok,)).fetchone()
    if not run:
        return 0, None, None
    reason = db.execute("SELECT error FROM photos WHERE state = 'quarantined' AND updated_at = ?",
                        (newest,)).fetchone()[0]
    return run, newest, reason


def filed_today(db: Database) -> int:
    midnight = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    return db.execute("SELECT count(*) FROM photos WHERE state = 'done' AND updated_at >= ?",
                      (midnight,)).fetchone()[0]


def word(status: dict[str, Any]) -> str:
    """down | error | paused | working | idle, from a status with `running`, `problems`, `paused`."""
    if not status.get("running"):
        return "down"
    if status.get("problems"):
        return "error"
    if status.get("paused"):
        return "paused"
    if status.get("queue_depth"):
        return "working"
    return "idle"


def line(status: dict[str, Any]) -> str:
    """The one line that goes with the word: the tray's tooltip, systemd's STATUS=."""
    w = status.get("state") or word(status)
    queued = status.get("queue_depth") or 0
    if w == "down":
        return "starsort is not running"
    if w == "error":
        return status["problems"][0]
    if w == "paused":
        return "intake paused" + (f" · {queued:,} waiting" if queued else "")
    if w == "working":
        return f"{queued:,} queued · {status.get('photos_per_second') or 0:.1f} photos/s"
    return f"idle · {status.get('filed_today') or 0:,} filed today"


def status(db: Database, cfg: Config) -> dict[str, Any]:
    """store.queries.status, with paused, problems, filed_today, state and line."""
    from . import queries
    return add(db, cfg, queries.status(db))


def brief(db: Database, cfg: Config) -> dict[str, Any]:
    """What the running service itself needs every few seconds (STATUS=, notifications), without
    the whole library's counts: every query here walks an index range, not the library."""
    now = time.time()
    # As `status` counts its queue: analysed photos waiting to be filed are still to do.
    queued = db.execute("SELECT count(*) FROM photos WHERE state IN ('queued', 'analysed', 'filing')").fetchone()[0]
    settling = db.execute("SELECT count(*) FROM inbox").fetchone()[0]
    recent = sum(db.execute("SELECT count(*) FROM photos WHERE state = ? AND updated_at > ?",
                            (state, now - 60)).fetchone()[0] for state in ("done", "quarantined", "duplicate"))
    keyed = keyed_problems(db, cfg)
    out: dict[str, Any] = {"running": True, "queue_depth": queued + settling,
                           "photos_per_second": round(recent / 60, 2),
                           "problem_kinds": [k for k, _ in keyed]}
    return _finish(db, cfg, out, [t for _, t in keyed])


def add(db: Database, cfg: Config, status: dict[str, Any]) -> dict[str, Any]:
    return _finish(db, cfg, status, problems(db, cfg))


def _finish(db: Database, cfg: Config, status: dict[str, Any], standing: list[str]) -> dict[str, Any]:
    paused = pause.state(cfg.database)
    status["paused"] = paused is not None
    status["paused_since"] = (None if paused is None or paused.get("at") is None else
                              time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(paused["at"])))
    status["problems"] = standing
    status["filed_today"] = filed_today(db)
    status["state"] = word(status)
    status["line"] = line(status)
    return status


def finished_since(db: Database, since: float) -> dict[str, Any]:
    """Photos filed (by stars) and quarantined since `since`: a drained shoot's summary."""
    stars = {str(s): 0 for s in range(1, 6)}
    for s, n in db.execute("SELECT stars, count(*) FROM photos WHERE updated_at >= ? AND state = 'done'"
                           " AND stars BETWEEN 1 AND 5 GROUP BY stars", (since,)):
        stars[str(s)] = n
    quarantined = db.execute("SELECT count(*) FROM photos WHERE updated_at >= ? AND state = 'quarantined'",
                             (since,)).fetchone()[0]
    return {"stars": stars, "quarantined": quarantined}
