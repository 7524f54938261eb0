"""The photographer overrules the machine: stars, reject, the burst's pick, or back to the machine.

Each override is a function of a `Library`, run on the service's deciding
thread (the review page only submits requests), and does three things:

1. records the decision in the database, with a snapshot of what it
   replaced (`store.decisions`), so the page's undo can put it back and
   nothing automatic changes it again;
2. moves the photo, its RAW or JPEG partner and its sidecars into the folder
   the decision calls for (`N-stars/`, or `rejected/`) through the same
   journal as any filing (`outcomes.refile`), so a crash half-way is
   finished at the next start and `starsort undo` still takes the photo back
   to its inbox;
3. rewrites `xmp:Rating` (-1 for a reject) and the burst's pick label.

If the move cannot happen (a full disk), the decision is taken back and the
error reported: the database never says a photo is somewhere it is not.
A photo that is not filed (queued, quarantined) cannot be overruled yet.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from ..store import decisions, photos
from ..store.db import transaction
from . import bursts, outcomes, ratings
from .context import Library
from .names import REJECTED, find_sidecars, folder_for, photo_stem, stars_of_folder, stars_text

log = logging.getLogger("starsort.library")


class Refused(Exception):
    """An override that cannot apply to this photo; the message says why."""


@dataclass
class Done:
    photo_id: int
    action: str
    message: str


def set_stars(lib: Library, photo_id: int, stars: int) -> Done:
    if not 1 <= int(stars) <= 5:
        raise Refused(f"stars must be 1 to 5, not {stars}")
    return _decide(lib, photo_id, "stars", stars=int(stars), rejected=False, by="photographer")


def reject(lib: Library, photo_id: int) -> Done:
    return _decide(lib, photo_id, "reject", stars=None, rejected=True, by="photographer")


def to_machine(lib: Library, photo_id: int) -> Done:
    """Back to what the analysis decided: its stars, not rejected, the machine's burst pick."""
    row = _filed(lib, photo_id)
    done = _decide(lib, photo_id, "machine", stars=row["machine_stars"] or row["stars"], rejected=False,
                   by="machine", release_pick=True)
    return done


def pick(lib: Library, photo_id: int) -> Done:
    """Make this frame its burst's pick; it stays the pick when sharper frames land."""
    row = _filed(lib, photo_id)
    # Every photo opens a cluster of its own; only two frames or more make a burst. A pick
    # alone would be a decision nothing shows, which the next Ctrl+Z would undo instead
    # of the change the photographer can see.
    if row["cluster_id"] is None or lib.call(lambda db: photos.cluster_size(db, row["cluster_id"])) < 2:
        raise Refused("this photo is in no burst")
    now = time.time()

    def write(db: Database) -> int:
        with transaction(db):
            before = decisions.snapshot(db, photo_id)
            decisions.choose_pick(db, row["cluster_id"], photo_id, "photographer")
            after = decisions.snapshot(db, photo_id)
            return decisions.record(db, photo_id, "pick", before, after, now)
    lib.call(write)
    ratings.relabel(lib, row["cluster_id"])
    log.info("photographer: %s is the pick of its burst", os.path.basename(row["current_path"]))
    return Done(photo_id, "pick", "the pick of its burst")


def undo_last(lib: Library) -> Done | None:
    """Put the newest decision back as it was before it; None if there is none."""
    d = lib.call(decisions.last)
    if d is None:
        return None
    b = d["before"]
    photo_id = d["photo_id"]
    row = lib.photo(photo_id)
    now = time.time()
    if row["state"] != "done":
        lib.call(lambda db: decisions.undone(db, d["id"], now))
        raise Refused(f"photo {photo_id} is no longer filed; its decision cannot be put back")

    def restore(db: Database) -> dict:
        with transaction(db):
            now_state = decisions.snapshot(db, photo_id)
            _put_back(db, photo_id, b, row["cluster_id"], now)
            decisions.undone(db, d["id"], now)
            return now_state
    current = lib.call(restore)
    if not _place(lib, photo_id):
        # The files could not move: neither does the decision, which stays the one to undo.
        def revert(db: Database) -> None:
            with transaction(db):
                _put_back(db, photo_id, current, row["cluster_id"], time.time())
                decisions.not_undone(db, d["id"])
        lib.call(revert)
        raise Refused(f"could not move {os.path.basename(row['current_path'])} back; see the last error")
    log.info("photographer: undid %s of %s", d["action"], os.path.basename(row["original_path"]))
    return Done(photo_id, "undo", f"undid {d['action']}")


def _put_back(db: Database, photo_id: int, b: dict, cluster_id: int | None, now: float) -> None:
    """A photo's stars, rejection and burst pick as a snapshot has them (in a transaction)."""
    decisions.decide(db, photo_id, stars=b["stars"], rejected=b["rejected"], decided_by=b["decided_by"], now=now)
    if b["cluster_id"] is not None and b["cluster_id"] == cluster_id:
        if b["pick_by"] == "photographer" and b["pick_id"] is not None:
            decisions.choose_pick(db, b["cluster_id"], b["pick_id"], "photographer")
        else:
            decisions.release_pick(db, b["cluster_id"])
            bursts.repick(db, b["cluster_id"])


def moved_by_hand(lib: Library, src: str, dst: str) -> Done | None:
    """The photographer moved a filed file between star folders (or into rejected/) in a file
    manager: that is a decision. Its partner and sidecars follow it, under its name, and its
    rating is rewritten. Returns None for a move that is not of a filed photo's file."""
    root = str(lib.root) + os.sep
    if not dst.startswith(root) or not src.startswith(root):
        return None
    row = lib.call(lambda db: next(iter(db.query(
        "SELECT * FROM photos WHERE state = 'done' AND (current_path = ? OR pair_path = ?) LIMIT 1",
        [src, src])), None))
    if row is None:
        return None
    new_folder = Path(dst).parent
    if new_folder.parent != lib.root:
        return None
    name = new_folder.name
    stars = stars_of_folder(name)
    if stars is None and name != REJECTED:
        return None
    if Path(src).parent == new_folder:
        return None                              # renamed in place: not a decision
    role = "primary" if row["current_path"] == src else "pair"
    lib.filer.record_done(row["id"], role, src, dst)
    # The rest of the group follows, under the moved file's stem, if it is
    # still where it was (the photographer may have moved them all).
    stem, old_stem = photo_stem(dst), photo_stem(src)
    old_folder = str(Path(src).parent)
    rest = [p for p in (row["current_path"], row["pair_path"]) if p and p != src]
    # Its files starsort knows in the old folder (moved in, or written there:
    # sidecars, a converted JPEG), and any sidecar found next to it now.
    known = lib.call(lambda db: [r[0] for r in db.execute(
        "SELECT dst FROM moves WHERE photo_id = :id UNION SELECT path FROM artifacts WHERE photo_id = :id",
        {"id": row["id"]})])
    rest += [p for p in known if os.path.dirname(p) == old_folder and p not in rest and p != src]
    rest += [p for p in find_sidecars([p for p in (row["current_path"], row["pair_path"]) if p]) if p not in rest]
    for path in rest:
        r = "pair" if path == row["pair_path"] else "primary" if path == row["current_path"] else "sidecar"
        base = os.path.basename(path)
        target = new_folder / (stem + base[len(old_stem):] if base.startswith(old_stem) else base)
        if not os.path.lexists(path):
            if os.path.lexists(target):
                # The photographer moved it along too (the whole selection): only the journal follows.
                lib.filer.record_done(row["id"], r, path, str(target))
            continue
        if os.path.lexists(target):
            lib.event("WARNING", f"{os.path.basename(path)} cannot follow {os.path.basename(dst)} into {name}:"
                      f" {target.name} is taken there")
            continue
        lib.filer.plan_one(row["id"], outcomes.Member(r, path), str(target), False)
    try:
        placed = lib.filer.complete(row["id"])
    except OSError as e:
        lib.event("ERROR", f"cannot move the rest of {os.path.basename(dst)} into {name}: {e}; will retry at start")
        return None
    now = time.time()

    def write(db: Database) -> None:
        with transaction(db):
            before = decisions.snapshot(db, row["id"])
            decisions.decide(db, row["id"], stars=stars, rejected=stars is None, decided_by="photographer", now=now)
            decisions.record(db, row["id"], "moved", before, decisions.snapshot(db, row["id"]), now)
    lib.call(write)
    outcomes.finish_filing(lib, row["id"], {k: v for k, v in placed.items() if k in ("primary", "pair")}, "done")
    ratings.write(lib, row["id"])
    what = "rejected" if stars is None else stars_text(stars)
    log.info("photographer moved %s into %s: %s", os.path.basename(dst), name, what)
    return Done(row["id"], "moved", what)


# ---- shared ---------------------------------------------------------------------

def _filed(lib: Library, photo_id: int) -> dict:
    row = lib.call(lambda db: next(iter(db.query("SELECT * FROM photos WHERE id = ?", [photo_id])), None))
    if row is None:
        raise Refused(f"no photo with id {photo_id}")
    if row["state"] != "done":
        raise Refused(f"photo {photo_id} is {row['state']}, not filed: it cannot be rated yet")
    return row


def _decide(lib: Library, photo_id: int, action: str, *, stars: int | None, rejected: bool, by: str,
            release_pick: bool = False) -> Done:
    row = _filed(lib, photo_id)
    now = time.time()

    def write(db: Database) -> int:
        with transaction(db):
            before = decisions.snapshot(db, photo_id)
            decisions.decide(db, photo_id, stars=stars, rejected=rejected, decided_by=by, now=now)
            cluster = row["cluster_id"]
            if cluster is not None and (release_pick or rejected or before["rejected"]):
                if release_pick and before["pick_by"] == "photographer" and before["pick_id"] == photo_id:
                    decisions.release_pick(db, cluster)
                bursts.repick(db, cluster)
            return decisions.record(db, photo_id, action, before, decisions.snapshot(db, photo_id), now)
    decision_id = lib.call(write)
    if not _place(lib, photo_id):
        # The move did not happen: neither did the decision.
        before = lib.call(lambda db: decisions.last(db))
        if before is not None and before["id"] == decision_id:
            b = before["before"]

            def revert(db: Database) -> None:
                with transaction(db):
                    decisions.decide(db, photo_id, stars=b["stars"], rejected=b["rejected"],
                                     decided_by=b["decided_by"], now=time.time())
                    decisions.forget(db, decision_id)
            lib.call(revert)
        raise Refused(f"could not move {os.path.basename(row['current_path'])}; see the last error")
    after = lib.photo(photo_id)
    what = "rejected" if after["rejected"] else stars_text(after["stars"])
    who = "photographer" if by == "photographer" else "back to the machine"
    log.info("%s: %s -> %s", who, os.path.basename(row["original_path"]), what)
    return Done(photo_id, action, what)


def _place(lib: Library, photo_id: int) -> bool:
    """Put a filed photo in the folder its decision calls for and write its rating; True when it is there."""
    row = lib.photo(photo_id)
    if not lib.in_place:
        dest = lib.root / folder_for(row["stars"], bool(row["rejected"]))
        if not outcomes.refile(lib, photo_id, dest):
            return False
    ratings.write(lib, photo_id)
    return True


def moved_while_stopped(lib: Library) -> list[tuple[str, str]]:
    """(from, to) for filed files the photographer moved into another star folder (or into
    rejected/) while starsort was not running: a filed photo that is gone from its place
    and lies, under the same name, in one of those folders."""
    if lib.in_place:
        return []
    root = str(lib.root) + os.sep
    folders = [lib.root / folder_for(s, False) for s in range(1, 6)] + [lib.root / REJECTED]
    found = []
    for r in lib.call(lambda db: list(db.query(
            "SELECT current_path FROM photos WHERE state = 'done' AND substr(current_path, 1, length(:root)) = :root",
            {"root": root}))):
        path = r["current_path"]
        if os.path.lexists(path):
            continue
        name = os.path.basename(path)
        for f in folders:
            if f != Path(path).parent and os.path.lexists(f / name):
                found.append((path, str(f / name)))
                break
    return found


def misplaced(lib: Library) -> list[int]:
    """Filed photos that are not in the folder their rating calls for (a crash between a
    decision and its move): start-up moves them."""
    if lib.in_place:
        return []
    root = str(lib.root) + os.sep
    out = []
    for r in lib.call(lambda db: list(db.query(
            "SELECT id, stars, rejected, current_path FROM photos WHERE state = 'done' AND stars IS NOT NULL"
            " AND substr(current_path, 1, length(:root)) = :root", {"root": root}))):
        folder = Path(r["current_path"]).parent
        if folder.parent != lib.root:
            continue
        if (stars_of_folder(folder.name) is not None or folder.name == REJECTED) and \
                folder.name != folder_for(r["stars"], bool(r["rejected"])):
            out.append(r["id"])
    return out


def place_misplaced(lib: Library) -> int:
    n = 0
    for photo_id in misplaced(lib):
        if _place(lib, photo_id):
            n += 1
    return n
