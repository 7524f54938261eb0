"""Incremental burst clustering by pHash, in SQLite.

Contract
--------
`assign(db, photo_id, cfg)` is called once per analysed photo, from the one
writer thread, after the photo's row has `phash`, `captured_ts`,
`captured_subsec`, `camera_model` and `sharpness` written, and its
signature is in `signatures`. It:

* finds the earlier photo (any other photo that already has a `cluster_id`)
  whose burst this one belongs to, by the first rule that finds one:
  1. *Time.* Both capture times carry EXIF sub-seconds, the camera model is
     the same, and they are at most `cfg.burst_gap_seconds` apart (the
     closest in time wins): a camera does not take two different photos a
     fraction of a second apart, so this holds even if the subject moved.
  2. *Content.* The pHash is within `cfg.max_distance` bits (Hamming, of 64),
     the capture times within `cfg.window_seconds` (inclusive), the camera
     models do not differ, and the two signatures confirm it: after
     alignment and exposure, no part of the frame changed by more than
     `cfg.max_change` (`analysis.signature.difference`). Candidates are
     tried by the smallest distance, then the closest capture time, then
     the lowest id; at most MAX_VERIFIED are verified. A photo without a
     signature (analysed before signatures existed) matches on the pHash
     alone, as before, and only within LEGACY_DISTANCE bits. Of the photos
     sharing a band, only the CANDIDATES_PER_BAND nearest in time are looked
     at, so a window crowded with near-identical frames costs the same as a
     sparse one;
* joins that photo's cluster, or else opens a new cluster of one;
* keeps exactly one `is_pick = 1` per cluster: the sharpest member (highest
  `sharpness`, NULL counting as lowest; ties go to the lowest id), moving the
  mark when a sharper frame arrives, with `clusters.pick_photo_id` and
  `clusters.size` kept in step;
* returns `(cluster_id, is_pick)` for this photo.

All of it runs in one transaction (`db.atomic()`, a savepoint if the caller
already has one open), so a crash never leaves a cluster with two picks or a
stale size.

Edge cases: a photo whose `phash` is NULL (no decodable image) is not
clustered: it returns `(None, False)` and its `cluster_id`/`is_pick` are
cleared. A photo whose `captured_ts` is NULL cannot satisfy any window, so it
gets a cluster of its own. Calling `assign` again for a photo that already has
a cluster (re-analysis) first takes it out of that cluster (repicking it, or
deleting it if it empties), then assigns afresh; the other members stay
together even if the photo was the link between them. Clusters are single
linkage in arrival order: a new photo joins one cluster and never merges two.
`b0..b3` are rewritten from `phash` if they disagree, since a stale band
would hide the photo from every later lookup.

Why pHash needs a second opinion
--------------------------------
Handheld burst frames, shifted by about 2 % of the frame and exposed +-10 %,
sit 0-14 pHash bits apart (7-10 typically), so a radius of 6 split about a
third of them; but at 11, other photos of the same spot (the person moved a
little, a few seconds later) fall inside too. pHash sees the whole frame at
8 x 8 frequencies and cannot say *where* it changed; the signature can: a
handheld frame changes nowhere once aligned, another photo changes where
the person was (bench/quality.py measures both, with precision and recall).

Lookup: the capture window, or multi-index hashing over the band indexes
-------------------------------------------------------------------------
A window of +- `window_seconds` usually holds a few photos: those are read
whole, through `photos_captured` (one index range), when there are at most
WINDOW_SCAN of them. A crowded window (long bursts, time-lapses, batches whose
capture time fell back to nearly equal mtimes, cameras with an unset clock)
is looked up by similarity instead, so its cost is bounded by how many
photos look alike, not by how many were taken then:

The 64-bit hash is split into four 16-bit bands, most significant first
(`b0..b3`, each indexed as `(bN, captured_ts)`). If two hashes are within
distance d, at least one band differs by at most r = floor(d / 4) bits
(pigeonhole: four bands of at least r + 1 bits each would make d >= 4r + 4).
So for each band we enumerate every 16-bit value within radius r of ours
(sum of C(16, k), k <= r: 137 values for the default d = 11, r = 2), and ask

    bN IN (<137 values>) AND captured_ts BETWEEN ts - w AND ts + w

for the four bands in one UNION ALL statement (4 * 137 = 548 index seeks;
548 + 8 bound variables fits even SQLite's old 999-variable limit; larger
radii are chunked to the connection's limit). Survivors are few and are
verified in Python with popcount(a ^ b), then by their signatures.

Why the work does not grow with the table: each seek is O(log N), and the second
index column narrows each seek to the time window. Without the window a band
value matches about N / 65536 rows (15 at a million, random hashes), so the
candidates to verify would grow with N (about 8,000 at a million); with it,
only photos both band-similar and shot within the window are read, which is a
property of the shooting, not of the library size.

Measured by bench/bench_cluster.py (defaults, 2 vCPU shared with another
job's test suite, SQLite 3.40; synthetic library, 60 % of photos in bursts,
three years; half the new photos continue a burst and carry a real frame's
signature) and bench/bench_speed.py; the figures are in README.md "Speed".
The work is flat; a signature check (about 2 ms) is paid by the new photos
that have a candidate, about one in two there.
"""
from __future__ import annotations

import sqlite3
import time

from sqlite_utils import Database

from ..analysis import signature
from ..analysis.phash import N_BANDS, bands, hamming, neighbour_masks, parse
from ..config import ClusterConfig

__all__ = ["assign", "bands", "find_match", "hamming", "repick"]

# Used when the connection cannot report its limit: SQLite's pre-3.32 default.
_FALLBACK_MAX_VARIABLES = 999
# Frames of one shooting position (a product shoot, a tripod time-lapse) can
# all share a band and a capture window: without a bound every earlier frame
# would come back for every new one, and the lookup would cost O(library).
# The best match of a burst frame is almost always its neighbour in time, so
# the nearest few in time per band are enough; SQLite sorts the window's
# rows itself, and Python verifies at most 4 x this many.
CANDIDATES_PER_BAND = 32
# Signature checks per new photo, at most (about 1-2 ms each): the best
# candidates by distance and time are tried first, and the first confirmed wins.
MAX_VERIFIED = 8
# The radius of the pHash-only rule, for photos without a signature.
LEGACY_DISTANCE = 6
# A capture window holding at most this many clustered photos is read whole
# (one range of the capture-time index); a more crowded one through the bands.
WINDOW_SCAN = 64


def band_radius(max_distance: int) -> int:
    return max_distance // N_BANDS


def _max_variables(db: Database) -> int:
    try:
        return db.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        return _FALLBACK_MAX_VARIABLES


def candidate_queries(
    phash_hex: str, captured_ts: float, cfg: ClusterConfig, max_variables: int = _FALLBACK_MAX_VARIABLES
) -> list[tuple[str, list[float | int]]]:
    """The (sql, params) statements that fetch the possible matches.

    Each returns rows (id, phash, captured_ts, cluster_id, camera_model) of clustered photos
    that share a band within radius with `phash_hex` and lie in the window,
    at most CANDIDATES_PER_BAND per band part, nearest in time first; a row
    may come back more than once (from several bands). Exposed so tests can
    check the plan with EXPLAIN QUERY PLAN.
    """
    masks = neighbour_masks(band_radius(cfg.max_distance))
    lo, hi = captured_ts - cfg.window_seconds, captured_ts + cfg.window_seconds
    # Each part carries its own window bounds, capture time and limit.
    per_part = max(1, max_variables - 4)
    parts: list[tuple[int, list[int]]] = []
    for i, band in enumerate(bands(phash_hex)):
        values = [band ^ m for m in masks]
        for start in range(0, len(values), per_part):
            parts.append((i, values[start:start + per_part]))

    statements: list[tuple[str, list[float | int]]] = []
    selects: list[str] = []
    params: list[float | int] = []
    for i, values in parts:
        if selects and len(params) + len(values) + 4 > max_variables:
            statements.append((" UNION ALL ".join(selects), params))
            selects, params = [], []
        selects.append(
            f"SELECT * FROM (SELECT id, phash, captured_ts, cluster_id, camera_model FROM photos"
            f" WHERE b{i} IN ({','.join('?' * len(values))})"
            f" AND captured_ts BETWEEN ? AND ? AND cluster_id IS NOT NULL"
            f" ORDER BY abs(captured_ts - ?), id LIMIT ?)"
        )
        params.extend(values)
        params.extend((lo, hi, captured_ts, CANDIDATES_PER_BAND))
    statements.append((" UNION ALL ".join(selects), params))
    return statements


def find_match(
    db: Database, photo_id: int, phash_hex: str, captured_ts: float, cfg: ClusterConfig, *,
    sig: bytes | None = None, camera: str | None = None, subsec: bool = False,
) -> tuple[int, int] | None:
    """(photo id, cluster id) of the earlier photo whose burst this one joins, or None."""
    if subsec:
        near = in_the_same_second(db, photo_id, captured_ts, camera, cfg)
        if near is not None:
            return near
    query = parse(phash_hex)
    found: list[tuple[tuple[int, float, int], int]] = []
    seen: set[int] = set()
    for cand_id, cand_hash, cand_ts, cand_cluster, cand_camera in _candidates(db, phash_hex, captured_ts, cfg):
        if cand_id == photo_id or cand_id in seen or cand_hash is None:
            continue
        seen.add(cand_id)
        distance = (query ^ int(cand_hash, 16)).bit_count()
        dt = abs(cand_ts - captured_ts)
        # The SQL window is computed as ts +- w; re-check |dt| so float
        # rounding cannot admit a frame just outside it.
        if distance > cfg.max_distance or dt > cfg.window_seconds:
            continue
        # One camera's frames make a burst; two bodies on one scene do not.
        if camera is not None and cand_camera is not None and camera != cand_camera:
            continue
        found.append(((distance, dt, cand_id), cand_cluster))
    found.sort()
    verified = 0
    for (distance, _, cand_id), cand_cluster in found:
        other = _signature(db, cand_id) if sig is not None else None
        if sig is None or other is None:
            if distance <= min(LEGACY_DISTANCE, cfg.max_distance):
                return cand_id, cand_cluster
            continue
        if verified == MAX_VERIFIED:
            break
        verified += 1
        if signature.difference(sig, other) <= cfg.max_change:
            return cand_id, cand_cluster
    return None


def _candidates(db: Database, phash_hex: str, captured_ts: float, cfg: ClusterConfig):
    """Rows (id, phash, captured_ts, cluster_id, camera_model) that may match: every clustered
    photo of a sparse window, else those the band indexes propose (see the module docstring)."""
    lo, hi = captured_ts - cfg.window_seconds, captured_ts + cfg.window_seconds
    rows = db.execute(
        "SELECT id, phash, captured_ts, cluster_id, camera_model FROM photos INDEXED BY photos_captured"
        " WHERE captured_ts BETWEEN ? AND ? AND cluster_id IS NOT NULL LIMIT ?",
        [lo, hi, WINDOW_SCAN + 1]).fetchall()
    if len(rows) <= WINDOW_SCAN:
        yield from rows
        return
    for sql, params in candidate_queries(phash_hex, captured_ts, cfg, _max_variables(db)):
        yield from db.execute(sql, params)


def in_the_same_second(db: Database, photo_id: int, captured_ts: float, camera: str | None,
                       cfg: ClusterConfig) -> tuple[int, int] | None:
    """(photo id, cluster id) of the clustered photo of the same camera closest in time, if both
    carry sub-second capture times and lie at most `cfg.burst_gap_seconds` apart."""
    if cfg.burst_gap_seconds <= 0:
        return None
    row = db.execute(
        "SELECT id, cluster_id FROM photos WHERE captured_ts BETWEEN ? AND ? AND captured_subsec = 1"
        " AND cluster_id IS NOT NULL AND id != ? AND camera_model IS ?"
        " ORDER BY abs(captured_ts - ?), id LIMIT 1",
        [captured_ts - cfg.burst_gap_seconds, captured_ts + cfg.burst_gap_seconds, photo_id, camera,
         captured_ts],
    ).fetchone()
    return None if row is None else (row[0], row[1])


def _signature(db: Database, photo_id: int) -> bytes | None:
    row = db.execute("SELECT data FROM signatures WHERE photo_id = ?", [photo_id]).fetchone()
    return None if row is None else row[0]


def _rank(sharpness: float | None, photo_id: int) -> tuple[bool, float, int]:
    """Larger is a better pick: sharper, NULL lowest, then lower id."""
    return (sharpness is not None, sharpness if sharpness is not None else 0.0, -photo_id)


def _new_cluster(db: Database, photo_id: int) -> int:
    cur = db.execute(
        "INSERT INTO clusters (pick_photo_id, size, created_at) VALUES (?, 1, ?)",
        [photo_id, time.time()],
    )
    cluster_id = cur.lastrowid
    assert cluster_id is not None
    db.execute("UPDATE photos SET cluster_id = ?, is_pick = 1 WHERE id = ?", [cluster_id, photo_id])
    return cluster_id


def repick(db: Database, cluster_id: int) -> int | None:
    """Recompute a cluster's pick and size from its members; delete it if empty.

    O(cluster size): used when a member leaves, or if the incremental state
    is found inconsistent. Returns the pick's id (None if the cluster was
    deleted). Call inside a transaction.
    """
    # A pick the photographer chose stays while it is in the burst; else the
    # sharpest frame the photographer has not rejected.
    row = db.execute(
        "SELECT p.id, (SELECT count(*) FROM photos WHERE cluster_id = ?) FROM photos p"
        " LEFT JOIN clusters c ON c.id = p.cluster_id"
        " WHERE p.cluster_id = ? ORDER BY (c.pick_by = 'photographer' AND c.pick_photo_id = p.id) DESC,"
        " p.rejected, p.sharpness IS NULL, p.sharpness DESC, p.id LIMIT 1",
        [cluster_id, cluster_id],
    ).fetchone()
    if row is None:
        db.execute("DELETE FROM clusters WHERE id = ?", [cluster_id])
        return None
    pick_id, size = row
    db.execute(
        "UPDATE photos SET is_pick = (id = ?) WHERE cluster_id = ? AND is_pick != (id = ?)",
        [pick_id, cluster_id, pick_id],
    )
    db.execute(
        "INSERT INTO clusters (id, pick_photo_id, size, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET pick_photo_id = excluded.pick_photo_id, size = excluded.size",
        [cluster_id, pick_id, size, time.time()],
    )
    return pick_id


def _join(db: Database, photo_id: int, sharpness: float | None, cluster_id: int) -> bool:
    db.execute("UPDATE photos SET cluster_id = ?, is_pick = 0 WHERE id = ?", [cluster_id, photo_id])
    row = db.execute(
        "SELECT c.pick_photo_id, p.sharpness, p.cluster_id, c.pick_by, p.rejected FROM clusters c"
        " LEFT JOIN photos p ON p.id = c.pick_photo_id WHERE c.id = ?",
        [cluster_id],
    ).fetchone()
    if row is None or row[0] is None or row[2] != cluster_id:
        # Missing cluster row or a pick that left: rebuild rather than guess.
        return repick(db, cluster_id) == photo_id
    pick_id, pick_sharpness, _, pick_by, pick_rejected = row
    # Nothing automatic overrules the photographer: a sharper frame landing
    # later does not take the pick they chose.
    if pick_by != "photographer" and (pick_rejected or _rank(sharpness, photo_id) > _rank(pick_sharpness, pick_id)):
        db.execute("UPDATE photos SET is_pick = 0 WHERE id = ?", [pick_id])
        db.execute("UPDATE photos SET is_pick = 1 WHERE id = ?", [photo_id])
        db.execute(
            "UPDATE clusters SET pick_photo_id = ?, size = size + 1 WHERE id = ?", [photo_id, cluster_id]
        )
        return True
    db.execute("UPDATE clusters SET size = size + 1 WHERE id = ?", [cluster_id])
    return False


def assign(db: Database, photo_id: int, cfg: ClusterConfig) -> tuple[int | None, bool]:
    """Put one analysed photo into a burst cluster; see the module docstring.

    Returns (cluster_id, is_pick of this photo), or (None, False) for a photo
    with no pHash. Raises LookupError if the photo does not exist.
    """
    with db.atomic():
        row = db.execute(
            "SELECT phash, b0, b1, b2, b3, captured_ts, sharpness, cluster_id, camera_model, captured_subsec"
            " FROM photos WHERE id = ?",
            [photo_id],
        ).fetchone()
        if row is None:
            raise LookupError(f"no photo with id {photo_id}")
        phash_hex, b0, b1, b2, b3, captured_ts, sharpness, old_cluster, camera, subsec = row

        if old_cluster is not None:
            db.execute("UPDATE photos SET cluster_id = NULL, is_pick = 0 WHERE id = ?", [photo_id])
            repick(db, old_cluster)
        if phash_hex is None:
            return None, False

        expected = bands(phash_hex)
        if (b0, b1, b2, b3) != expected:
            db.execute("UPDATE photos SET b0 = ?, b1 = ?, b2 = ?, b3 = ? WHERE id = ?", [*expected, photo_id])

        match = None if captured_ts is None else find_match(
            db, photo_id, phash_hex, captured_ts, cfg, sig=_signature(db, photo_id), camera=camera,
            subsec=bool(subsec))
        if match is None:
            return _new_cluster(db, photo_id), True
        cluster_id = match[1]
        return cluster_id, _join(db, photo_id, sharpness, cluster_id)
