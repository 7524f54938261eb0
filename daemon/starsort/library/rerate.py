"""Re-rating filed photos from their stored scores, under the config in force.

How a photographer changes the threshold after a shoot: `starsort rerate`
(or the review page's threshold what-if, applied) recomputes every filed
photo's stars with `analysis.rate.stars_for` from the face and frame scores the
analysis stored, without decoding anything again, and moves the photos
whose stars change. A photo the photographer decided keeps their stars and
folder; only its machine rating (what `U` returns to) is brought up to date.
"""
from __future__ import annotations

import logging
import time

from sqlite_utils import Database

from ..analysis import rate
from ..config import Config
from ..store import review
from ..store.db import transaction
from . import outcomes, ratings
from .context import Library
from .names import folder_for

log = logging.getLogger("starsort.library")


def plan(db: Database, cfg: Config) -> list[tuple[int, int, int]]:
    """(photo id, stars now, stars under `cfg`) for each photo a re-rate would move."""
    return review.rerate_changes(db, cfg)


def apply(lib: Library, cfg: Config) -> dict:
    """Re-rate under `cfg`; returns {"changed", "moved", "not_moved"}."""
    changes = lib.call(lambda db: plan(db, cfg))
    now = time.time()

    def machine_ratings(db: Database) -> None:
        # Photographers' decisions stay; what the machine would say is kept current.
        with transaction(db):
            for photo_id, scores, face_px, frame_score in db.execute(
                    "SELECT id, face_scores, face_px, frame_score FROM photos WHERE state = 'done'"
                    " AND rated_on IS NOT NULL").fetchall():
                v = rate.verdict(review.stored_faces(scores, face_px), frame_score, cfg)
                stars = v.stars
                blurry = sum(1 for s in v.counted if s < cfg.blur.threshold)
                db.execute("UPDATE photos SET machine_stars = ?, blurry_faces = ?, stars = CASE WHEN"
                           " decided_by = 'machine' THEN ? ELSE stars END, updated_at = ? WHERE id = ?"
                           " AND (machine_stars IS NOT ? OR blurry_faces IS NOT ?)",
                           (stars, blurry, stars, now, photo_id, stars, blurry))
    lib.call(machine_ratings)
    moved = not_moved = 0
    for photo_id, old, new in changes:
        row = lib.photo(photo_id)
        ok = True
        if not lib.in_place:
            ok = outcomes.refile(lib, photo_id, lib.root / folder_for(new, bool(row["rejected"])))
        if ok:
            ratings.write(lib, photo_id)
            moved += 1
        else:
            not_moved += 1
    if changes:
        log.info("re-rated at blur.threshold %g: %d photo(s) changed stars", cfg.blur.threshold, len(changes))
    return {"changed": len(changes), "moved": moved, "not_moved": not_moved, "threshold": cfg.blur.threshold}
