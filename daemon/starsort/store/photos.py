"""A photo's row, its states and every transition between them, one function each.

    queued --analysed--> analysed --start_filing--> filing --filed--> done | quarantined
       ^                    |  ^                        |
       |                    |  +----- filing_failed ----+   (disk full: retried)
       +---- requeue -------+-----------------------------   (a source changed)
    any active state --failed--> failed --(next start: retry_failed)--> queued
    done | quarantined --undone--> undone
    done --start_filing--> filing --filed--> done             (refiled: an override moves it)
    filing --filing_ended--> done                             (a refiling taken back)
    queued | analysed --copy_of, then filed or skipped--> duplicate   (bytes already filed)

Only these functions change `photos.state`, so the states a photo can be in,
and how it gets there, are read in one place. They run on the writer
thread's connection (`Writer.call(lambda db: photos.failed(db, ...))`); the
caller decides when, these decide how.
"""
from __future__ import annotations

import json
import logging
import os

from sqlite_utils import Database

log = logging.getLogger(__name__)

# States in which a path belongs to a photo starsort is still working on (or
# gave up on, `failed`, which blocks its path until the file changes).
ACTIVE = ("queued", "analysed", "filing", "failed")
# States in which a photo waits for the deciding thread.
PENDING = ("queued", "analysed", "filing")

_SCOPE = "(:scope IS NULL OR substr({0}, 1, length(:scope)) = :scope)"


# ---- reading ------------------------------------------------------------------

def get(db: Database, photo_id: int) -> dict:
    return next(iter(db.query("SELECT * FROM photos WHERE id = ?", [photo_id])))


def by_path(db: Database, path: str, states: tuple[str, ...]) -> dict | None:
    """The newest photo in one of `states` whose raw or JPEG came from `path`."""
    marks = ",".join("?" * len(states))
    rows = list(db.query(
        f"SELECT * FROM photos WHERE (original_path = ? OR pair_original_path = ?) AND state IN ({marks})"
        " ORDER BY id DESC LIMIT 1", [path, path, *states]))
    return rows[0] if rows else None


def filed_with_stem(db: Database, folder: str, stem: str) -> dict | None:
    """The newest filed photo whose original was `folder`/`stem`.EXT, the stem in any case.

    By ranges on the original_path index, one per spelling of the stem (as
    given, lower, upper), so the cost does not grow with the photos filed
    from that folder: a lone JPEG asks this on every admission.
    """
    want = stem.casefold()
    best: dict | None = None
    for spelling in dict.fromkeys((stem, stem.lower(), stem.upper())):
        lo = os.path.join(folder, spelling) + "."
        hi = os.path.join(folder, spelling) + chr(ord(".") + 1)
        for row in db.query("SELECT * FROM photos WHERE original_path >= ? AND original_path < ?"
                            " AND +state = 'done' ORDER BY id DESC", [lo, hi]):
            if os.path.splitext(os.path.basename(row["original_path"]))[0].casefold() == want:
                if best is None or row["id"] > best["id"]:
                    best = row
                break
    return best


# The re-import checks name their index: by state alone (photos_state_updated) the
# planner may choose to walk every filed photo, on every photo filed.
_FILED_BY_SIZE = "photos INDEXED BY photos_filed_size_sha"


def filed_with_size(db: Database, size: int, exclude: int) -> bool:
    """Whether any filed photo's primary file has this many bytes (the cheap test before hashing)."""
    return db.execute(f"SELECT 1 FROM {_FILED_BY_SIZE} WHERE size = ? AND state = 'done' AND id != ? LIMIT 1",
                      (size, exclude)).fetchone() is not None


def unhashed_with_size(db: Database, size: int) -> list[dict]:
    """Filed photos of this size whose bytes were never hashed (moved by a link, which reads nothing)."""
    return list(db.query(f"SELECT id, current_path, pair_path FROM {_FILED_BY_SIZE}"
                         " WHERE size = ? AND sha256 IS NULL AND state = 'done'", [size]))


def filed_with_hash(db: Database, size: int, sha256: str, exclude: int) -> list[dict]:
    return list(db.query(f"SELECT * FROM {_FILED_BY_SIZE} WHERE size = ? AND sha256 = ? AND state = 'done' AND id != ?"
                         " ORDER BY id", [size, sha256, exclude]))


def to_dispatch(db: Database, *, skip: list[int], limit: int, scope: str | None) -> list[dict]:
    """Photos waiting for analysis (`queued`) or for filing (`analysed`), oldest first."""
    return list(db.query(
        "SELECT * FROM photos WHERE state IN ('queued', 'analysed') AND id NOT IN (SELECT value FROM json_each(:skip))"
        f" AND {_SCOPE.format('original_path')} ORDER BY id LIMIT :n",
        {"skip": json.dumps(skip), "n": limit, "scope": scope}))


def pending(db: Database, scope: str | None) -> tuple[int, list[str]]:
    """How many photos still wait for the deciding thread, and the inbox paths not yet settled."""
    row = db.execute(
        f"SELECT (SELECT count(*) FROM photos WHERE state IN ('queued', 'analysed', 'filing')"
        f" AND {_SCOPE.format('original_path')}), (SELECT json_group_array(path) FROM inbox"
        f" WHERE {_SCOPE.format('path')})", {"scope": scope}).fetchone()
    return row[0], json.loads(row[1])


def stuck_in_filing(db: Database) -> list[int]:
    """Photos left `filing` by a crash, with journal rows to finish."""
    return [r[0] for r in db.execute(
        "SELECT id FROM photos WHERE state = 'filing' AND id IN (SELECT photo_id FROM moves)")]


def cluster_size(db: Database, cluster_id: int | None) -> int:
    if cluster_id is None:
        return 0
    row = db.execute("SELECT size FROM clusters WHERE id = ?", (cluster_id,)).fetchone()
    return row[0] if row else 0


def stale_labels(db: Database, cluster_id: int, label: str) -> list[dict]:
    """Filed members of a burst whose pick label no longer says what it should."""
    return list(db.query(
        "SELECT p.id, p.current_path, p.pair_path FROM photos p JOIN clusters c ON c.id = p.cluster_id"
        " WHERE p.cluster_id = ? AND p.state = 'done' AND ("
        "  (p.is_pick = 1 AND c.size >= 2 AND p.xmp_label IS NOT ?)"
        "  OR ((p.is_pick = 0 OR c.size < 2) AND p.xmp_label IS NOT NULL))",
        [cluster_id, label]))


# ---- entering ------------------------------------------------------------------

def queue(db: Database, *, original: str, pair: str | None, kind: str,
          size: int | None, mtime_ns: int | None, now: float) -> int:
    """A settled file (or RAW+JPEG pair) becomes a photo waiting for analysis.

    A photo that `undo` put back and that lands again is the same photo: its
    row starts over, so the report keeps one row per photo, not one per visit.
    """
    photo_id = _undone(db, original)
    if photo_id is None:
        photo_id = db.execute(
            "INSERT INTO photos (original_path, pair_original_path, kind, state, size, mtime_ns, queued_at,"
            " updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING id",
            (original, pair, kind, size, mtime_ns, now, now)).fetchone()[0]
    else:
        _start_over(db, photo_id, pair=pair, kind=kind, size=size, mtime_ns=mtime_ns, error=None, now=now)
    log.info("queued %s%s", original, f" + {os.path.basename(pair)}" if pair else "")
    return photo_id


def queue_refused(db: Database, path: str, reason: str, now: float) -> int:
    """A file that is not a photo (a lone sidecar, a file that cannot follow its photo),
    entered only to be quarantined with `reason`."""
    photo_id = _undone(db, path)
    if photo_id is not None:
        _start_over(db, photo_id, pair=None, kind="other", size=None, mtime_ns=None, error=reason, now=now)
        return photo_id
    return db.execute(
        "INSERT INTO photos (original_path, kind, state, error, queued_at, updated_at)"
        " VALUES (?, 'other', 'queued', ?, ?, ?) RETURNING id", (path, reason, now, now)).fetchone()[0]


def _undone(db: Database, original: str) -> int | None:
    row = db.execute("SELECT id FROM photos WHERE original_path = ? AND state = 'undone' ORDER BY id DESC LIMIT 1",
                     (original,)).fetchone()
    return row[0] if row else None


def _start_over(db: Database, photo_id: int, *, pair: str | None, kind: str, size: int | None,
                mtime_ns: int | None, error: str | None, now: float) -> None:
    # The old analysis stays until the new one overwrites it; the report
    # shows stars only for filed photos, and bursts re-assign on analysis.
    db.execute("UPDATE photos SET state = 'queued', pair_original_path = ?, kind = ?, size = ?, mtime_ns = ?,"
               " attempts = 0, error = ?, current_path = NULL, pair_path = NULL, xmp_label = NULL,"
               " sha256 = NULL, pair_sha256 = NULL, duplicate_of = NULL,"
               " decided_by = 'machine', rejected = 0, preview = NULL,"
               " queued_at = ?, updated_at = ? WHERE id = ?",
               (pair, kind, size, mtime_ns, error, now, now, photo_id))


def requeue_replaced(db: Database, photo_id: int, *, kind: str, size: int, mtime_ns: int, now: float) -> None:
    """A failed photo's path holds a new file: the same row, not a new one (two rows
    for one path could file it twice), starts again."""
    db.execute("UPDATE photos SET state = 'queued', kind = ?, size = ?, mtime_ns = ?, attempts = 0, error = NULL,"
               " sha256 = NULL, updated_at = ? WHERE id = ?", (kind, size, mtime_ns, now, photo_id))


def raw_joins_jpeg(db: Database, photo_id: int, *, raw: str, jpeg: str, size: int, mtime_ns: int,
                   now: float) -> None:
    """A raw settled after its JPEG was queued: the raw becomes the original, the JPEG its pair."""
    db.execute("UPDATE photos SET original_path = ?, pair_original_path = ?, kind = 'raw',"
               " size = ?, mtime_ns = ?, sha256 = NULL, pair_sha256 = NULL, updated_at = ? WHERE id = ?",
               (raw, jpeg, size, mtime_ns, now, photo_id))


def jpeg_joins_raw(db: Database, photo_id: int, jpeg: str, now: float) -> None:
    db.execute("UPDATE photos SET pair_original_path = ?, pair_sha256 = NULL, updated_at = ? WHERE id = ?",
               (jpeg, now, photo_id))


def set_kind(db: Database, photo_id: int, kind: str) -> None:
    """Judged by its bytes: a JPEG named .nef is a JPEG (its name is kept)."""
    db.execute("UPDATE photos SET kind = ? WHERE id = ?", (kind, photo_id))


# ---- analysis ------------------------------------------------------------------

def analysed(db: Database, photo_id: int, columns: dict) -> None:
    """The analysis result is stored (`store.results` builds `columns`): ready to file.

    A photo the photographer has decided keeps their stars: a new analysis
    (its file changed) updates only what the machine thinks, `machine_stars`.
    """
    sets = ", ".join(f"{k} = CASE WHEN decided_by = 'photographer' THEN {k} ELSE :{k} END"
                     if k == "stars" else f"{k} = :{k}" for k in columns)
    db.execute(f"UPDATE photos SET state = 'analysed', error = NULL, {sets} WHERE id = :_id",
               {**columns, "_id": photo_id})


def count_attempt(db: Database, photo_id: int, error: str) -> int:
    """One more analysis attempt went wrong; returns how many have."""
    return db.execute("UPDATE photos SET attempts = attempts + 1, error = ? WHERE id = ? RETURNING attempts",
                      (error, photo_id)).fetchone()[0]


def reset_attempts(db: Database, photo_id: int) -> None:
    db.execute("UPDATE photos SET attempts = 0 WHERE id = ?", (photo_id,))


def note_error(db: Database, photo_id: int, reason: str, now: float | None = None) -> None:
    """Say why without changing the state (a quarantine's reason, an unreadable file)."""
    if now is None:
        db.execute("UPDATE photos SET error = ? WHERE id = ?", (reason, photo_id))
    else:
        db.execute("UPDATE photos SET error = ?, updated_at = ? WHERE id = ?", (reason, now, photo_id))


def failed(db: Database, photo_id: int, reason: str, now: float) -> None:
    """Given up on for now: the file stays where it is, and the next start tries again."""
    db.execute("UPDATE photos SET state = 'failed', error = ?, updated_at = ? WHERE id = ?",
               (reason, now, photo_id))


# ---- filing --------------------------------------------------------------------

def start_filing(db: Database, photo_id: int, now: float) -> None:
    """Its moves are journalled (in the same transaction as this)."""
    db.execute("UPDATE photos SET state = 'filing', updated_at = ? WHERE id = ?", (now, photo_id))


def filing_failed(db: Database, photo_id: int, error: str) -> None:
    """The library refused (full, read-only, unmounted): back to analysed, to be retried."""
    db.execute("UPDATE photos SET state = 'analysed', error = ? WHERE id = ? AND state != 'done'",
               (error, photo_id))


def requeue(db: Database, photo_id: int) -> None:
    """A source changed while it was being filed: analyse it again."""
    db.execute("UPDATE photos SET state = 'queued' WHERE id = ?", (photo_id,))


def hashed(db: Database, photo_id: int, sha256: str | None, pair_sha256: str | None) -> None:
    """Its files' content hashes, once something had reason to read them (None: not known)."""
    db.execute("UPDATE photos SET sha256 = COALESCE(?, sha256), pair_sha256 = COALESCE(?, pair_sha256)"
               " WHERE id = ?", (sha256, pair_sha256, photo_id))


def copy_of(db: Database, photo_id: int, of: int) -> None:
    """Its bytes are already in the library, as photo `of`; it is skipped, not filed."""
    db.execute("UPDATE photos SET duplicate_of = ? WHERE id = ?", (of, photo_id))


def skipped(db: Database, photo_id: int, now: float) -> None:
    """A copy left where it lies (copy mode): in starsort's care only as a record."""
    db.execute("UPDATE photos SET state = 'duplicate', current_path = original_path,"
               " pair_path = pair_original_path, updated_at = ? WHERE id = ?", (now, photo_id))


def filed(db: Database, photo_id: int, state: str, current: str | None, pair: str | None, now: float) -> None:
    """Filed into a star folder (`done`), into quarantine, or (a copy already filed) into
    duplicates; in rate-in-place mode, rated where it lies."""
    assert state in ("done", "quarantined", "duplicate"), state
    db.execute("UPDATE photos SET state = ?, current_path = ?, pair_path = ?, updated_at = ? WHERE id = ?",
               (state, current, pair, now, photo_id))


def without_preview(db: Database) -> dict | None:
    """A filed photo the review page has no preview of yet (analysed before previews existed), newest first."""
    return next(iter(db.query("SELECT id, current_path, pair_path, kind FROM photos WHERE state = 'done'"
                              " AND preview IS NULL ORDER BY id DESC LIMIT 1")), None)


def preview_made(db: Database, photo_id: int, key: str) -> None:
    """Its previews are written under `key` ('' when none could be made: not tried again)."""
    db.execute("UPDATE photos SET preview = ? WHERE id = ?", (key, photo_id))


def filing_ended(db: Database, photo_id: int) -> None:
    """A refiling that was taken back: the photo stays filed where it was."""
    db.execute("UPDATE photos SET state = 'done' WHERE id = ? AND state = 'filing'", (photo_id,))


def partner_followed(db: Database, photo_id: int, original: str, current: str, now: float) -> None:
    """A late raw or JPEG joined its already-filed photo."""
    db.execute("UPDATE photos SET pair_original_path = ?, pair_path = ?, pair_sha256 = NULL, updated_at = ?"
               " WHERE id = ?", (original, current, now, photo_id))


def set_label(db: Database, photo_id: int, label: str | None) -> None:
    """The pick label its sidecar now carries (None: none of ours)."""
    db.execute("UPDATE photos SET xmp_label = ? WHERE id = ?", (label, photo_id))


def undone(db: Database, photo_id: int, now: float) -> None:
    """`starsort undo` put it back where it came from."""
    db.execute("UPDATE photos SET state = 'undone', current_path = original_path,"
               " pair_path = pair_original_path, xmp_label = NULL, updated_at = ? WHERE id = ?",
               (now, photo_id))


# ---- start-up --------------------------------------------------------------------

def unfinished_filing_restarts(db: Database, photo_id: int) -> None:
    """An interrupted filing that cannot be finished as planned is filed again; an
    interrupted refiling leaves the photo filed where it was."""
    db.execute("UPDATE photos SET state = CASE WHEN current_path IS NOT NULL THEN 'done' ELSE 'analysed' END"
               " WHERE id = ? AND state != 'done'", (photo_id,))


def recover(db: Database) -> None:
    """What a crash can leave half-said in the photos table, put right at start-up."""
    # 'filing' without journal rows: the crash came before the plan was written.
    db.execute("UPDATE photos SET state = 'analysed' WHERE state = 'filing'"
               " AND id NOT IN (SELECT photo_id FROM moves)")
    # Failed photos get a fresh chance at each start.
    db.execute("UPDATE photos SET state = 'queued', attempts = 0 WHERE state = 'failed'")
    # A late pair member that followed its photo is recorded on the photo
    # only after its move; a crash in between leaves the journal as the one
    # place that knows the pair.
    db.execute("UPDATE photos SET pair_original_path = m.src, pair_path = m.dst"
               " FROM (SELECT photo_id, src, dst FROM moves WHERE role = 'pair' AND state = 'done') AS m"
               " WHERE photos.id = m.photo_id AND photos.pair_original_path IS NULL")

