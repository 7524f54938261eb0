"""Duplicate photos across the whole library, by pHash.

Bursts (`library/bursts.py`) look only at photos taken within a couple of minutes
of each other; a duplicate is the same picture whenever it was taken or
imported: the same card imported twice, a JPEG exported from the raw, a
resized copy. So this compares every photo with every other, by Hamming
distance between 64-bit pHashes, and groups them transitively (union-find):
if A is within `max_distance` of B and B of C, A, B and C are one group.

It is a read-only query, run by `starsort duplicates` and by the report. The
lookup is the multi-index hashing of `library/bursts.py` done in memory: four
dictionaries from a 16-bit band to the photos having it, probed with every
band value within radius floor(d / 4) (pigeonhole: two hashes within d share
a band within that radius). Without a time window a band is shared by
N / 65536 photos on average, so the work grows a little faster than N; at
100k photos that is 1.6 s at d = 2 and 9 s at d = 6 on 2 cores.

A RAW+JPEG pair is one photo (one row, analysed once), so a pair is never
reported as a duplicate of itself. Photos without a pHash (quarantined,
not yet analysed) are left out.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlite_utils import Database

from ..analysis.phash import bands, neighbour_masks


@dataclass
class Photo:
    id: int
    path: str
    phash: int


def groups(db: Database, max_distance: int) -> list[list[Photo]]:
    """Groups of two or more photos whose pHashes chain within `max_distance`.

    Each group is ordered by photo id (the first is the one filed first), and
    groups by their first photo's id.
    """
    photos = [Photo(r[0], r[1], int(r[2], 16)) for r in db.execute(
        "SELECT id, COALESCE(current_path, original_path), phash FROM photos"
        " WHERE phash IS NOT NULL AND state = 'done' ORDER BY id")]
    parent = {p.id: p.id for p in photos}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    masks = neighbour_masks(max_distance // 4)
    index: list[dict[int, list[Photo]]] = [defaultdict(list) for _ in range(4)]
    for p in photos:
        seen: set[int] = set()
        for i, band in enumerate(bands(f"{p.phash:016x}")):
            for m in masks:
                for q in index[i].get(band ^ m, ()):
                    if q.id in seen:
                        continue
                    seen.add(q.id)
                    if (p.phash ^ q.phash).bit_count() <= max_distance:
                        a, b = find(p.id), find(q.id)
                        if a != b:
                            parent[max(a, b)] = min(a, b)
        for i, band in enumerate(bands(f"{p.phash:016x}")):
            index[i][band].append(p)

    by_root: dict[int, list[Photo]] = defaultdict(list)
    for p in photos:
        by_root[find(p.id)].append(p)
    return sorted((g for g in by_root.values() if len(g) > 1), key=lambda g: g[0].id)


def copy_of(db: Database) -> dict[int, str]:
    """{photo id: path of the filed photo} for every photo skipped as a byte-identical copy."""
    return {r[0]: r[1] for r in db.execute(
        "SELECT d.id, COALESCE(o.current_path, o.original_path) FROM photos d JOIN photos o ON o.id = d.duplicate_of"
        " WHERE d.state = 'duplicate'")}


def exact_groups(db: Database) -> list[list[Photo]]:
    """Groups of photos with the same bytes: the one filed first, then its copies.

    The copies skipped on import (state 'duplicate') join the photo they copy;
    filed photos join each other when their content hashes match (filed with
    `on_import: file`, or before it existed). Only hashed photos are compared,
    and `library.copies` hashes every photo that shares a size with a filed one.
    """
    rows = list(db.query(
        "SELECT id, COALESCE(current_path, original_path) AS path, phash, sha256, pair_sha256, duplicate_of, state"
        " FROM photos WHERE state IN ('done', 'duplicate') ORDER BY id"))
    parent = {r["id"]: r["id"] for r in rows}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_with: dict[tuple, int] = {}
    for r in rows:
        if r["state"] == "duplicate" and r["duplicate_of"] in parent:
            join(r["id"], r["duplicate_of"])
        elif r["state"] == "done" and r["sha256"]:
            join(r["id"], first_with.setdefault((r["sha256"], r["pair_sha256"]), r["id"]))
    by_root: dict[int, list[Photo]] = defaultdict(list)
    for r in rows:
        by_root[find(r["id"])].append(Photo(r["id"], r["path"], int(r["phash"], 16) if r["phash"] else 0))
    return sorted((g for g in by_root.values() if len(g) > 1), key=lambda g: g[0].id)


def duplicate_of(db: Database, max_distance: int) -> dict[int, str]:
    """{photo id: path of the first photo of its group} for every later member of a group."""
    out: dict[int, str] = {}
    for g in groups(db, max_distance):
        for p in g[1:]:
            out[p.id] = g[0].path
    return out
