"""Every way a photo's story can end, each a function of the `Library`.

    file            into <library>/N-stars (or, in rate-in-place mode, rated where it lies)
    quarantine      into <library>/quarantine, with the reason
    quarantine_file a file that is not a photo of its own
    duplicate       a copy of a photo already filed: into <library>/duplicates, or left where it is
    refile          a filed photo into another folder of the library (an override, a re-rate)
    follow          a late raw, JPEG or sidecar joins its already-filed photo
    fail            given up on for this run; retried at the next start
    vanished        the user took the file away before it was filed
    unreadable      starsort may not read it: left in place, retried
    relook_quarantined  a quarantined file that changed since goes back to be looked at again

Writing the rating into XMP is the next step of the pipeline
(`library.ratings`), not part of filing: `file` returns the state it reached
and the pipeline decides what follows.
"""
from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ..store import photos, seen
from ..store.db import transaction
from . import copies, journal, ratings
from .context import Library
from .fsops import Collision, SourceChanged
from .names import DUPLICATES, QUARANTINE, Member, dest_name, find_sidecars, folder_for, photo_stem, stars_text

log = logging.getLogger("starsort.library")


def file(lib: Library, photo_id: int) -> str | None:
    """File an analysed photo by its stars; returns the state it reached ('done', 'quarantined'), else None."""
    row = lib.photo(photo_id)
    way, arg = _way(lib, row)
    if way == "in place":
        return rate_in_place(lib, row, "done")
    if way == "duplicate":
        return duplicate(lib, photo_id, arg)
    if way == "quarantine":
        return _file_into(lib, row, lib.root / QUARANTINE, final_state="quarantined")
    return _file_into(lib, row, arg, final_state="done")


def _way(lib: Library, row: dict) -> tuple[str, Any]:
    """How `file` files an analysed photo: ("in place", None), ("duplicate", the photo it copies),
    ("quarantine", None) or ("star folder", the folder)."""
    if lib.in_place:
        return "in place", None
    if row["duplicate_of"] is not None:
        # Found a copy before analysis, and its filing is retried.
        return "duplicate", lib.photo(row["duplicate_of"])
    if (of := copies.already_filed(lib, row)) is not None:
        # Its twin was filed while this one was being analysed (a card
        # copied into two inbox folders at once).
        return "duplicate", of
    if row["stars"] is None:
        # A quarantine that could not be filed (full disk) and is retried.
        return "quarantine", None
    # A photo the photographer rejected that comes back (its file changed in
    # the inbox) keeps their call: rejected/, not the machine's star folder.
    return "star folder", lib.root / folder_for(int(row["stars"]), bool(row["rejected"]))


def quarantine(lib: Library, photo_id: int, reason: str) -> None:
    row = lib.photo(photo_id)
    lib.event("WARNING", f"quarantined {row['original_path']}: {reason}")
    lib.call(lambda db: photos.note_error(db, photo_id, reason))
    if lib.in_place:
        rate_in_place(lib, row, "quarantined")
        return
    _file_into(lib, row, lib.root / QUARANTINE, final_state="quarantined")


def duplicate(lib: Library, photo_id: int, of: dict) -> str | None:
    """A photo whose every file is already filed, byte for byte, as photo `of`: not filed again.

    Never deleted: in move mode it goes to <library>/duplicates (through the
    journal, like any filing, so `undo` brings it back); in copy mode the
    original stays where it is and is remembered, so rescans leave it be.
    """
    lib.call(lambda db: photos.copy_of(db, photo_id, of["id"]))
    row = lib.photo(photo_id)
    twin = of["current_path"]
    if lib.copy:
        now = time.time()
        lib.call(lambda db: photos.skipped(db, photo_id, now))
        lib.remember(photo_id, [p for p in (row["original_path"], row["pair_original_path"]) if p])
        log.info("skipped %s: the same bytes are already filed as %s; left where it is",
                 row["original_path"], twin)
        return "duplicate"
    state = _file_into(lib, row, lib.root / DUPLICATES, final_state="duplicate")
    if state == "duplicate":
        log.info("skipped %s: the same bytes are already filed as %s", os.path.basename(row["original_path"]), twin)
    return state


def refile(lib: Library, photo_id: int, dest: Path) -> bool:
    """Move a filed photo, with its pair, its sidecars and any JPEG converted from it,
    into another folder of the library, through the journal; True once it is there.

    The same journal as the first filing, so a crash half-way is finished at
    the next start and `undo` takes the photo from wherever it now is back to
    its inbox. In rate-in-place mode nothing moves. A filing that cannot
    happen (disk full) is logged and leaves the photo where it was.
    """
    row = lib.photo(photo_id)
    if lib.in_place or row["state"] != "done" or not row["current_path"]:
        return False
    if Path(row["current_path"]).parent == dest:
        return True
    group = [Member("primary", row["current_path"])]
    if row["pair_path"]:
        group.append(Member("pair", row["pair_path"]))
    group += [Member("sidecar", p) for p in find_sidecars([m.src for m in group])
              if p not in {m.src for m in group}]
    converted = lib.call(lambda db: [r[0] for r in db.execute(
        "SELECT path FROM artifacts WHERE photo_id = ? AND kind = 'converted'", [photo_id])])
    group += [Member("converted", p) for p in converted if p not in {m.src for m in group}]
    group = [m for m in group if os.path.lexists(m.src)]
    if not any(m.role == "primary" for m in group):
        lib.event("WARNING", f"cannot move {row['current_path']}: it is no longer there")
        return False
    try:
        placed = lib.filer.file(photo_id, group, dest, copy=False)
    except (SourceChanged, OSError) as exc:
        if not lib.filer.committed(photo_id):
            unplan(lib, photo_id)
            lib.call(lambda db: photos.filing_ended(db, photo_id))
            lib.event("ERROR", f"cannot move {row['current_path']} into {dest}: {exc}")
            return False
        # Sources began to leave: only finishing it is safe, and the next
        # start's recovery does that if this cannot.
        lib.event("ERROR", f"moving {row['current_path']} into {dest} was cut short ({exc}); it is finished"
                  " at the next start")
        return False
    finish_filing(lib, photo_id, placed, "done")
    return True


def quarantine_file(lib: Library, path: str, reason: str) -> None:
    now = time.time()
    photo_id = lib.call(lambda db: photos.queue_refused(db, path, reason, now))
    quarantine(lib, photo_id, reason)


def fail(lib: Library, photo_id: int, reason: str) -> None:
    lib.event("ERROR", f"photo {photo_id} failed: {reason}")
    now = time.time()
    lib.call(lambda db: photos.failed(db, photo_id, reason, now))


def vanished(lib: Library, photo_id: int) -> None:
    # The user deleted or moved it (a renamed folder is found again by the
    # scan, under its new name): worth a warning, not an error per file.
    reason = "the file disappeared from the inbox before it was filed"
    lib.event("WARNING", f"photo {photo_id}: {reason}")
    now = time.time()
    lib.call(lambda db: photos.failed(db, photo_id, reason, now))


def unreadable(lib: Library, photo_id: int, e: OSError) -> None:
    """A file starsort may not read stays where it is, reported, and is tried again.

    Not quarantined: the file is most likely fine (copied in by another
    user or tool), and a file that cannot be read cannot have its copy
    verified, so moving it would be moving it blind.
    """
    what = "permission denied" if isinstance(e, PermissionError) else f"cannot read it ({e.strerror or e})"
    reason = f"{what}: left in the inbox; it is filed once starsort can read it"
    if lib.once:
        fail(lib, photo_id, reason)
        return
    lib.retry_at[photo_id] = time.monotonic() + lib.cfg.rescan_interval
    row = lib.photo(photo_id)
    if row["error"] != reason:  # reported once per file, not once per retry
        now = time.time()
        lib.call(lambda db: photos.note_error(db, photo_id, reason, now))
        lib.event("ERROR", f"cannot read {row['original_path']}: {reason}")


def members(row: dict) -> list[Member]:
    """The files that make up a photo in the inbox: raw or JPEG, its pair, and their sidecars."""
    found = [Member("primary", row["original_path"])]
    if row["pair_original_path"]:
        found.append(Member("pair", row["pair_original_path"]))
    found += [Member("sidecar", p) for p in find_sidecars([m.src for m in found])
              if p not in {m.src for m in found}]
    return [m for m in found if os.path.exists(m.src)]


def _file_into(lib: Library, row: dict, dest: Path, final_state: str) -> str | None:
    filer = lib.filer
    committed = filer.committed(row["id"])
    group = members(row)
    if not group and not committed:
        vanished(lib, row["id"])
        return None
    try:
        if committed:
            # An earlier attempt failed after a source had left: finish it.
            placed = filer.complete(row["id"])
        else:
            placed = filer.file(row["id"], group, dest, lib.copy)
    except (SourceChanged, OSError) as exc:
        e = exc if isinstance(exc, OSError) else OSError(errno.EAGAIN, str(exc))
        if not filer.committed(row["id"]):
            # No source has left yet: the placements are taken back and
            # the sources are intact.
            unplan(lib, row["id"])
            if isinstance(exc, SourceChanged):
                log.warning("%s; it will be analysed again", exc)
                lib.call(lambda db: photos.requeue(db, row["id"]))
                return None
        # Disk full, read-only or unmounted library, permissions, or a
        # filing that must be finished rather than taken back.
        # The service retries after rescan_interval, so it resumes by
        # itself once the disk is repaired; --once gives up (and the next
        # start's recovery finishes a filing that had begun removing sources).
        if lib.once:
            fail(lib, row["id"], f"cannot file into {dest}: {e}")
        else:
            lib.retry_at[row["id"]] = time.monotonic() + lib.cfg.rescan_interval
            msg = f"cannot file into {dest}: {e}"
            lib.call(lambda db: photos.filing_failed(db, row["id"], msg))
            # Once per photo and cause: a full disk retried every
            # rescan_interval must not bury the log in identical errors.
            if (row.get("error") or "").startswith(f"cannot file into {dest}: [Errno {e.errno}]"):
                log.info("photo %d still cannot be filed into %s: %s", row["id"], dest, e.strerror or e)
            else:
                lib.event("ERROR", f"cannot file {row['original_path']} into {dest}: {e}; will retry")
        return None
    state = finish_filing(lib, row["id"], placed, final_state)
    if not lib.copy:
        remove_emptied_folders(lib, [m.src for m in group])
    return state


def remove_emptied_folders(lib: Library, sources: list[str]) -> None:
    """Remove the camera folders that moving these files out left empty (a card's
    DCIM/100MSDCF/, then DCIM/ if that is all it held), never the inbox itself.

    Only a card's DCIM tree: a tethering program's session folder looks just
    as empty between two frames, and removing it would make its next write
    fail. Only folders a moved file came from are looked at, so a folder that
    was already empty stays; rmdir removes only an empty folder, so one a new
    file has just landed in stays too.
    """
    roots = [os.path.realpath(b) for b in lib.cfg.inboxes]
    for folder in sorted({os.path.dirname(s) for s in sources}, key=len, reverse=True):
        while True:
            real = os.path.realpath(folder)
            root = next((r for r in roots if real.startswith(r + os.sep)), None)
            if root is None:
                break                                   # never the inbox itself, nor outside it
            if "dcim" not in (part.casefold() for part in Path(real[len(root) + 1:]).parts):
                break                                   # not a card's folder
            try:
                os.rmdir(folder)
            except OSError:
                break                                   # not empty (or gone, or not ours to remove)
            log.info("removed %s: its photos are filed", folder)
            folder = os.path.dirname(folder)


def unplan(lib: Library, photo_id: int) -> None:
    try:
        lib.filer.unplan(photo_id)
    except OSError as e:
        # The journal rows stay; start-up recovery looks at the disk again.
        lib.event("ERROR", f"cannot take back the placements of photo {photo_id}: {e}")


def finish_filing(lib: Library, photo_id: int, placed: dict[str, str], final_state: str | None = None) -> str:
    """Record a completed filing: the photo's new paths, and its sources as seen. Returns the state."""
    row = lib.photo(photo_id)
    if final_state is None:
        folder = Path(placed.get("primary", "")).parent.name
        final_state = {QUARANTINE: "quarantined", DUPLICATES: "duplicate"}.get(folder, "done")
    primary = placed.get("primary") or row["current_path"]
    pair = placed.get("pair") or row["pair_path"]
    now = time.time()

    def finish(db: Database) -> None:
        with transaction(db):
            _record_filed(db, photo_id, final_state, primary, pair, now)
    lib.call(finish)
    _log_filed(row, primary, final_state)
    return final_state


def _record_filed(db: Database, photo_id: int, final_state: str, primary: str, pair: str | None,
                  now: float) -> None:
    """A finished filing in the database (inside the caller's transaction)."""
    photos.filed(db, photo_id, final_state, primary, pair, now)
    journal.collapse(db, photo_id)
    # A copy read every byte: keep its hash, so a later card imported
    # again is recognised without reading this file.
    for m in db.query("SELECT role, sha256 FROM moves WHERE photo_id = ? AND role IN ('primary', 'pair')"
                      " AND sha256 IS NOT NULL ORDER BY id", [photo_id]):
        photos.hashed(db, photo_id, *((m["sha256"], None) if m["role"] == "primary" else (None, m["sha256"])))
    for m in db.query("SELECT src, dst FROM moves WHERE photo_id = ?", [photo_id]):
        try:
            st = os.stat(m["dst"])
        except FileNotFoundError:
            continue
        seen.remember(db, m["src"], st, photo_id)


def _log_filed(row: dict, primary: str, final_state: str) -> None:
    if row["state"] in ("filing", "done") and row["current_path"] and row["current_path"] != primary:
        verb = "moved"          # a refiling: from one library folder to another
    else:
        verb = {"done": "filed", "quarantined": "quarantined", "duplicate": "moved the copy"}[final_state]
    log.info("%s %s -> %s", verb, os.path.basename(row["original_path"]), primary)


def file_many(lib: Library, photo_ids: list[int]) -> dict[int, str | None]:
    """`file` for photos analysed together (answers that came back at once): the states reached.

    Photos on the usual way (`_way`: a first filing into a star folder) are filed as one batch
    (`Filer.file_many`), whose durable steps they share, and finished in one transaction.
    Every other photo (rate-in-place, a copy already filed, a filing to finish, a quarantine
    to retry) and every photo that leaves the batch goes through `file`, one at a time,
    which handles each case as it always does.
    """
    states: dict[int, str | None] = {}
    batch: list[tuple[int, list[Member], Path]] = []
    rows: dict[int, dict] = {}
    for photo_id in photo_ids:
        row = lib.photo(photo_id)
        if row["state"] != "analysed" or lib.filer.committed(photo_id):
            continue
        way, dest = _way(lib, row)
        group = members(row) if way == "star folder" else []
        if any(m.role == "primary" for m in group):
            rows[photo_id] = row
            batch.append((photo_id, group, dest))
    filed: dict[int, dict[str, str]] = {}
    if batch:
        filed, _ = lib.filer.file_many(batch, lib.copy)
    now = time.time()

    def finish(db: Database) -> None:
        with transaction(db):
            for photo_id, placed in filed.items():
                db.execute("UPDATE moves SET state = 'done', updated_at = ? WHERE photo_id = ? AND state = 'placed'",
                           (now, photo_id))
                _record_filed(db, photo_id, "done", placed["primary"], placed.get("pair") or rows[photo_id]["pair_path"],
                              now)
    if filed:
        lib.call(finish)
    for photo_id, placed in filed.items():
        _log_filed(rows[photo_id], placed["primary"], "done")
        states[photo_id] = "done"
    if filed and not lib.copy:
        remove_emptied_folders(lib, [m.src for photo_id, group, _ in batch if photo_id in filed for m in group])
    for photo_id in photo_ids:
        if photo_id not in states:
            states[photo_id] = file(lib, photo_id)
    return states


def follow(lib: Library, photo: dict, path: str, role: str) -> None:
    """File a late pair member or sidecar next to its already-filed photo."""
    if lib.in_place:
        # It already lies next to its photo: rate it where it is.
        now = time.time()
        if role == "pair":
            lib.call(lambda db: photos.partner_followed(db, photo["id"], path, path, now))
        ratings.write_xmp(lib, photo["id"], [path if role == "pair" else photo["current_path"]])
        lib.remember(photo["id"], [path])
        return
    # Same folder, same (possibly suffixed) stem as the photo it belongs to.
    dest = Path(photo["current_path"]).parent
    new_stem = os.path.splitext(os.path.basename(photo["current_path"]))[0]
    dst = dest / dest_name(Member(role, path), photo_stem(photo["original_path"]), new_stem)
    if os.path.lexists(dst):
        quarantine_file(lib, path, f"{dst.name} already exists next to its photo")
        return
    now = time.time()
    lib.filer.plan_one(photo["id"], Member(role, path), str(dst), lib.copy)
    try:
        lib.filer.complete(photo["id"])
    except (OSError, Collision, SourceChanged) as e:
        # A full or missing library must not stop the service. The file
        # stays in the inbox and the next rescan brings it back here (or,
        # if it had already left the inbox, the next start finishes it).
        if not lib.filer.committed(photo["id"]):
            unplan(lib, photo["id"])
        lib.event("ERROR", f"cannot file {path} next to its photo: {e}; will retry")
        return
    if role == "pair":
        lib.call(lambda db: photos.partner_followed(db, photo["id"], path, str(dst), now))
        ratings.write_xmp(lib, photo["id"], [str(dst)])
    else:
        ratings.write_xmp(lib, photo["id"], [photo["current_path"]])
    log.info("filed %s next to its photo -> %s", os.path.basename(path), dst)
    if not lib.copy:
        remove_emptied_folders(lib, [path])


def rate_in_place(lib: Library, row: dict, final_state: str) -> str | None:
    """mode: rate-in-place: the photo stays where it is; only its XMP changes (the next step)."""
    files = [p for p in (row["original_path"], row["pair_original_path"]) if p]
    if not any(os.path.exists(f) for f in files):
        vanished(lib, row["id"])
        return None
    now = time.time()
    lib.call(lambda db: photos.filed(db, row["id"], final_state, row["original_path"],
                                     row["pair_original_path"], now))
    if final_state == "done":
        log.info("rated %s in place: %s", os.path.basename(row["original_path"]), stars_text(row["stars"]))
    else:
        log.info("left %s in place (not rated: %s)", os.path.basename(row["original_path"]), row["error"])
    lib.remember(row["id"], files)
    return final_state


def relook_quarantined(lib: Library) -> int:
    """Quarantined files that changed since they were quarantined go back to the inbox.

    A writer that stalled for longer than the verdict allows (`service.retry`)
    may still hold the file open; in move mode the quarantined name is the
    same file, so the rest of the photo lands there. Put back where it came
    from (the way `undo` does it, so nothing is overwritten), it is found by
    the watcher and analysed again, under its old row. In copy mode the
    quarantined copy never changes: a changed original is queued again by
    the rescan.
    """
    if lib.copy:
        return 0
    from . import undo
    quarantine = str(lib.root / QUARANTINE) + os.sep
    rows = lib.call(lambda db: list(db.query(
        "SELECT id, original_path, current_path FROM photos WHERE state = 'quarantined'"
        " AND substr(current_path, 1, length(:q)) = :q", {"q": quarantine})))
    n = 0
    for row in rows:
        try:
            st = os.lstat(row["current_path"])
        except OSError:
            continue
        if row["id"] in lib.stuck_in_quarantine or lib.call(
                lambda db: seen.known(db, row["original_path"], st.st_size, st.st_mtime_ns)):
            continue
        res = lib.call(lambda db: undo.undo_photo(db, row["id"]))
        if res.restored:
            n += 1
            log.info("quarantined %s changed since; putting it back to be looked at again",
                     os.path.basename(row["original_path"]))
        else:
            lib.stuck_in_quarantine.add(row["id"])
            lib.event("WARNING", f"quarantined {row['current_path']} changed since, but cannot go back: "
                      + "; ".join(res.skipped))
    return n
