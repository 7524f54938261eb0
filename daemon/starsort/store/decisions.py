"""The photographer's decisions: the stars, rejection and burst pick they chose, and their history.

`photos.stars` is the rating in force (the star folder and the XMP agree
with it), `photos.machine_stars` the analysis's own. A decision sets
`decided_by = 'photographer'`, after which nothing automatic changes the
photo's stars or rejection again; returning it to the machine (`U`) clears
that. A burst's pick chosen by the photographer is `clusters.pick_by`.

Every decision is a row in `decisions` with a snapshot of what it replaced,
so the page's undo can put the newest one back. They run on the writer.
"""
from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

ACTIONS = ("stars", "reject", "pick", "machine", "moved")


def snapshot(db: Database, photo_id: int) -> dict[str, Any]:
    """What a decision may change about a photo, as it is now."""
    row = db.execute(
        "SELECT p.stars, p.rejected, p.decided_by, p.cluster_id, c.pick_photo_id, c.pick_by FROM photos p"
        " LEFT JOIN clusters c ON c.id = p.cluster_id WHERE p.id = ?", [photo_id]).fetchone()
    if row is None:
        raise LookupError(f"no photo with id {photo_id}")
    stars, rejected, decided_by, cluster_id, pick_id, pick_by = row
    return {"stars": stars, "rejected": bool(rejected), "decided_by": decided_by,
            "cluster_id": cluster_id, "pick_id": pick_id, "pick_by": pick_by}


def decide(db: Database, photo_id: int, *, stars: int | None, rejected: bool, decided_by: str,
           now: float) -> None:
    """Set the rating in force; `decided_by` says whose it is."""
    assert decided_by in ("machine", "photographer"), decided_by
    db.execute("UPDATE photos SET stars = COALESCE(?, stars), rejected = ?, decided_by = ?, updated_at = ?"
               " WHERE id = ?", (stars, int(rejected), decided_by, now, photo_id))


def choose_pick(db: Database, cluster_id: int, photo_id: int, by: str) -> None:
    """Make `photo_id` its burst's pick; a photographer's pick stays when sharper frames land."""
    db.execute("UPDATE photos SET is_pick = (id = ?) WHERE cluster_id = ? AND is_pick != (id = ?)",
               (photo_id, cluster_id, photo_id))
    db.execute("UPDATE clusters SET pick_photo_id = ?, pick_by = ? WHERE id = ?", (photo_id, by, cluster_id))


def release_pick(db: Database, cluster_id: int) -> None:
    """The machine chooses the burst's pick again (the caller repicks)."""
    db.execute("UPDATE clusters SET pick_by = 'machine' WHERE id = ?", (cluster_id,))


def record(db: Database, photo_id: int, action: str, before: dict, after: dict, now: float) -> int:
    assert action in ACTIONS, action
    return db.execute("INSERT INTO decisions (photo_id, action, before, after, created_at) VALUES (?, ?, ?, ?, ?)"
                      " RETURNING id", (photo_id, action, json.dumps(before), json.dumps(after), now)).fetchone()[0]


def last(db: Database) -> dict | None:
    """The newest decision not yet undone, with its snapshots parsed."""
    row = next(iter(db.query("SELECT * FROM decisions WHERE undone_at IS NULL ORDER BY id DESC LIMIT 1")), None)
    if row is None:
        return None
    return {**row, "before": json.loads(row["before"]), "after": json.loads(row["after"])}


def undone(db: Database, decision_id: int, now: float) -> None:
    db.execute("UPDATE decisions SET undone_at = ? WHERE id = ?", (now, decision_id))


def not_undone(db: Database, decision_id: int) -> None:
    """An undo whose move could not happen: the decision is in force again, the next to undo."""
    db.execute("UPDATE decisions SET undone_at = NULL WHERE id = ?", (decision_id,))


def forget(db: Database, decision_id: int) -> None:
    """A decision whose move could not happen: it never took effect."""
    db.execute("DELETE FROM decisions WHERE id = ?", (decision_id,))
