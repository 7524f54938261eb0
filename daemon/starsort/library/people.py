"""People: find a person's photos from one face, group the faces into people, and the
photographer's corrections, which nothing automatic undoes.

    find      a face's vector against every face's, by brute force in numpy (exact,
              no index to build: a million faces is one matrix product)
    group     after each batch: a new face joins a named person when the nearest of that
              person's confirmed faces is within `people.threshold`; the rest, if large
              and sharp enough, are grouped by average linkage (`people.group_threshold`)
              with the suggested people already there
    name, merge, split, not_this_person, forget
              the photographer's actions; each face they touch is confirmed
    write_xmp named people into the photo's sidecars (MWG regions, PersonInImage)

Two faces of one photo are never one person unless the photographer says so.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from ..config import Config
from ..store import people as store
from . import xmp
from .context import Library

log = logging.getLogger("starsort.library")


# ---- find (the search itself is store.people.find: arithmetic the review page runs too) ----------

confirmed_vectors = store.confirmed_vectors


# ---- group ------------------------------------------------------------------------------------

# New faces placed per call: the first step compares them with each other (a BATCH x BATCH
# matrix), so a sort of an archive, grouped at its end, goes through its faces a batch at a time.
BATCH = 256

def group(db: Database, cfg: Config, since_face: int = 0, cache: store.PeopleCache | None = None) -> dict[str, Any]:
    """Place the faces embedded since `since_face` (all unplaced ones with 0); returns counts.

    Cost: the new faces against the named people's confirmed faces and against the
    suggested people's running sums, one matrix product each. Both come from `cache`,
    which reads back only the people changed since its last use (a fresh one reads
    them all); the library's other faces are never read.
    """
    p = cfg.people
    new_ids = store.unassigned_vectors(db, p.group_min_face_px, cfg.blur.threshold, since_face)[:BATCH]
    if not new_ids:
        return {"named": 0, "grouped": 0, "new_people": 0, "named_photos": []}
    cache = cache or store.PeopleCache()
    try:
        return _group(db, cfg, new_ids, cache)
    except BaseException:
        cache.reset()     # its rows may hold what a rollback undid
        raise


def _group(db: Database, cfg: Config, new_ids: list[int], cache: store.PeopleCache) -> dict[str, Any]:
    p = cfg.people
    cache.sync(db)
    new = store.load_vectors(db, face_ids=new_ids)
    refused = store.rejected_pairs(db)
    photo_people = _people_per_photo(db, set(new.photo_ids.tolist()))
    counts: dict[str, Any] = {"named": 0, "grouped": 0, "new_people": 0, "named_photos": []}

    # 1. Named people, by their nearest confirmed face.
    named = cache.named()
    left = []
    for i, fid in enumerate(new.face_ids.tolist()):
        photo = int(new.photo_ids[i])
        best, best_d = None, p.threshold
        for pid, mat in named:
            if (fid, pid) in refused or pid in photo_people.get(photo, set()):
                continue
            dmin = float(1.0 - (mat @ new.matrix[i]).max())
            if dmin < best_d:
                best, best_d = pid, dmin
        if best is None:
            left.append(i)
        else:
            store.assign(db, fid, best, confirmed=False)
            photo_people.setdefault(photo, set()).add(best)
            counts["named"] += 1
            counts["named_photos"].append(photo)

    # 2. Average linkage among the rest and the suggested people already there.
    if left:
        counts_2 = _link(db, p.group_threshold, new, left, refused, photo_people, cache)
        counts["grouped"] += counts_2[0]
        counts["new_people"] += counts_2[1]
    return counts


def _people_per_photo(db: Database, photo_ids: set[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    if not photo_ids:
        return out
    ids = list(photo_ids)
    for photo, person in db.execute(
            f"SELECT f.photo_id, fp.person_id FROM faces f JOIN face_people fp ON fp.face_id = f.id"
            f" WHERE f.photo_id IN ({','.join('?' * len(ids))})", ids):
        out.setdefault(photo, set()).add(person)
    return out


def _link(db: Database, threshold: float, new: store.Vectors, left: list[int],
          refused: set[tuple[int, int]], photo_people: dict[int, set[int]],
          cache: store.PeopleCache) -> tuple[int, int]:
    """Average linkage, in two steps. First the new faces among themselves: the closest two
    clusters under `threshold` merge, unless that would put two faces of one photo together.
    Then each resulting cluster joins the suggested person it is closest to on average, if
    under `threshold` and allowed (no face of the same photo, no "not this person"), or
    becomes a suggested person of its own (a face alone too: a later face of the same person
    finds it). The average similarity of two clusters is sum_a . sum_b / (n_a n_b), and each
    person keeps a running sum: step two is one matrix product against the people, and no
    face of theirs is read."""
    # Step 1: among the new faces (a batch: at most BATCH faces, see `group`).
    sums = new.matrix[left].astype(np.float64)
    sizes = np.ones(len(left))
    members = [[i] for i in left]
    photos = [{int(new.photo_ids[i])} for i in left]
    ph = new.photo_ids[left]
    # conflict[a, b]: clusters a and b hold faces of one photo, and may never merge.
    conflict = ph[:, None] == ph[None, :]
    alive = np.ones(len(left), bool)
    while alive.sum() > 1:
        idx = np.nonzero(alive)[0]
        dist = 1.0 - (sums[idx] @ sums[idx].T) / np.outer(sizes[idx], sizes[idx])
        dist[conflict[np.ix_(idx, idx)]] = np.inf
        a_pos, b_pos = np.unravel_index(np.argmin(dist), dist.shape)
        if dist[a_pos, b_pos] >= threshold:
            break
        a, b = idx[a_pos], idx[b_pos]
        sums[a] += sums[b]
        sizes[a] += sizes[b]
        members[a] += members[b]
        photos[a] |= photos[b]
        conflict[a, :] |= conflict[b, :]
        conflict[:, a] |= conflict[:, b]
        alive[b] = False
    clusters = [k for k in np.nonzero(alive)[0]]

    # Step 2: each cluster against the suggested people, by their running sums.
    ids, sim = cache.similarity(sums[clusters], sizes[clusters])
    grouped = new_people = 0
    for row, k in enumerate(clusters):
        target = None
        if len(ids):
            near = np.nonzero(1.0 - sim[row] < threshold)[0]
            for j in near[np.argsort(-sim[row][near])]:
                pid = int(ids[j])
                faces = [int(new.face_ids[i]) for i in members[k]]
                if any((f, pid) in refused for f in faces):
                    continue
                if any(pid in photo_people.get(ph, set()) for ph in photos[k]) or store.has_face_in(db, pid, photos[k]):
                    continue
                target = pid
                break
        if target is None:
            target = store.new_person(db)
            new_people += 1
        for i in members[k]:
            store.assign(db, int(new.face_ids[i]), target, confirmed=False)
            grouped += 1
        for ph in photos[k]:
            photo_people.setdefault(ph, set()).add(target)
    return grouped, new_people


def group_new(lib: Library, since: int) -> tuple[dict[str, Any], int]:
    """The service's step after a batch: group the faces embedded after face `since`;
    returns the counts and the newest face id seen (the next call's `since`)."""
    cfg = lib.cfg
    if lib.people_cache is None:
        lib.people_cache = store.PeopleCache()

    def do(db: Database) -> tuple[dict, int]:
        top = db.execute("SELECT max(face_id) FROM face_vectors").fetchone()[0] or 0
        total: dict[str, Any] = {"named": 0, "grouped": 0, "new_people": 0, "named_photos": []}
        while True:
            out = group(db, cfg, since_face=since, cache=lib.people_cache)
            for k in total:
                total[k] += out[k]
            if out["named"] + out["grouped"] < BATCH or not (out["named"] + out["grouped"]):
                return total, top
    out, top = lib.call(do)
    if out["named_photos"]:
        write_xmp(lib, sorted(set(out["named_photos"])))
    if out["named"] or out["grouped"]:
        log.info("people: %d face(s) joined named people, %d grouped (%d new suggested people)",
                 out["named"], out["grouped"], out["new_people"])
    return out, top


# ---- the photographer's actions ---------------------------------------------------------------

class Refused(ValueError):
    """An action that cannot be carried out as asked (a name taken, a person unknown)."""


def _person_id(db: Database, ref: str | int) -> int:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        row = store.person(db, int(ref))
    else:
        row = store.person_by_name(db, str(ref))
    if row is None:
        raise Refused(f"no person {ref!r} (see `starsort people list`)")
    return row["id"]


def name(lib: Library, ref: str | int, new_name: str) -> dict:
    """Name a person (suggested or named); their faces become confirmed."""
    new_name = new_name.strip()
    if not new_name:
        raise Refused("a name cannot be empty")

    def do(db: Database) -> tuple[int, list[int]]:
        pid = _person_id(db, ref)
        other = store.person_by_name(db, new_name)
        if other is not None and other["id"] != pid:
            raise Refused(f"{new_name!r} is already person {other['id']}: merge them instead")
        store.rename(db, pid, new_name)
        store.confirm_all(db, pid)
        return pid, store.photos_of(db, pid)
    pid, photos = lib.call(do)
    write_xmp(lib, photos)
    return {"person_id": pid, "name": new_name, "photos": len(photos)}


def merge(lib: Library, into: str | int, other: str | int) -> dict:
    """Every face of `other` becomes `into`'s (confirmed); `other` is gone."""
    def do(db: Database) -> tuple[int, list[int]]:
        a, b = _person_id(db, into), _person_id(db, other)
        if a == b:
            raise Refused("a person cannot be merged with themselves")
        rows = store.person(db, a), store.person(db, b)
        photos = sorted(set(store.photos_of(db, a)) | set(store.photos_of(db, b)))
        store.move_faces(db, b, a)
        store.confirm_all(db, a)
        if rows[0]["name"] is None and rows[1]["name"] is not None:
            name_b = rows[1]["name"]
            store.delete_person(db, b)
            store.rename(db, a, name_b)
        else:
            store.delete_person(db, b)
        return a, photos
    pid, photos = lib.call(do)
    write_xmp(lib, photos)
    return {"person_id": pid, "photos": len(photos)}


def split(lib: Library, ref: str | int, face_ids: list[int], new_name: str | None = None) -> dict:
    """The given faces of a person become a new person (confirmed), named if a name is given."""
    def do(db: Database) -> tuple[int, list[int]]:
        pid = _person_id(db, ref)
        mine = {r[0] for r in db.execute("SELECT face_id FROM face_people WHERE person_id = ?", (pid,))}
        stray = [f for f in face_ids if f not in mine]
        if stray or not face_ids:
            raise Refused(f"faces {stray or face_ids} are not person {pid}'s")
        if new_name and store.person_by_name(db, new_name):
            raise Refused(f"{new_name!r} is already a person")
        new = store.new_person(db, new_name or None)
        for f in face_ids:
            store.assign(db, f, new, confirmed=True)
            store.not_person(db, f, pid)
        photos = [r[0] for r in db.execute(
            f"SELECT DISTINCT photo_id FROM faces WHERE id IN ({','.join('?' * len(face_ids))})", face_ids)]
        return new, photos
    pid, photos = lib.call(do)
    write_xmp(lib, photos)
    return {"person_id": pid, "faces": len(face_ids)}


def assign_face(lib: Library, face_id: int, ref: str | int) -> dict:
    """The photographer puts one face in a person (confirmed)."""
    def do(db: Database) -> tuple[int, list[int]]:
        pid = _person_id(db, ref)
        photo = db.execute("SELECT photo_id FROM faces WHERE id = ?", (face_id,)).fetchone()
        if photo is None:
            raise Refused(f"no face {face_id}")
        store.assign(db, face_id, pid, confirmed=True)
        return pid, [photo[0]]
    pid, photos = lib.call(do)
    write_xmp(lib, photos)
    return {"person_id": pid, "face_id": face_id}


def not_this_person(lib: Library, face_id: int, ref: str | int) -> dict:
    """The face is not that person: taken out, and never put back there automatically."""
    def do(db: Database) -> tuple[int, list[int]]:
        pid = _person_id(db, ref)
        photo = db.execute("SELECT photo_id FROM faces WHERE id = ?", (face_id,)).fetchone()
        if photo is None:
            raise Refused(f"no face {face_id}")
        store.not_person(db, face_id, pid)
        store.drop_empty_people(db)
        return pid, [photo[0]]
    pid, photos = lib.call(do)
    write_xmp(lib, photos)
    return {"person_id": pid, "face_id": face_id}


def forget(lib: Library) -> int:
    """Every face vector, person and assignment deleted; the XMP names starsort wrote removed."""
    def do(db: Database) -> tuple[int, list[int]]:
        photos = [r[0] for r in db.execute(
            "SELECT DISTINCT f.photo_id FROM face_people fp JOIN faces f ON f.id = fp.face_id"
            " JOIN people pe ON pe.id = fp.person_id WHERE pe.name IS NOT NULL")]
        return store.forget_all(db), photos
    n, photos = lib.call(do)
    write_xmp(lib, photos)
    return n


# ---- XMP ----------------------------------------------------------------------------------------

def write_xmp(lib: Library, photo_ids: list[int]) -> None:
    """Rewrite the named people into each photo's sidecars (and its pair's)."""
    if not lib.cfg.xmp.enabled:
        return
    for pid in photo_ids:
        row = lib.photo(pid)
        if row is None or row["state"] != "done" or not row["width"] or not row["height"]:
            continue
        named = lib.call(lambda db, p=pid: store.named_people_in(db, p))
        files = [f for f in (row["current_path"], row.get("pair_path")) if f]
        for f in files:
            try:
                xmp.write_people(Path(f), named, (row["width"], row["height"]), lib.cfg.xmp.sidecar_naming)
            except (xmp.XmpError, OSError, ValueError) as e:
                lib.event("WARNING", f"could not write the people of {f} into its XMP: {e}")
