"""The move journal: file a photo's group into a folder so that a crash can always be finished.

The invariant: at every instant, even after `kill -9`, each original's bytes
exist in full in at least one known place. So:

* A group (RAW + JPEG + sidecars) is placed whole (`fsops.place`) before any
  source is unlinked, so a crash can never split it between inbox and library.
* Every step is journalled in `moves` before and after. `complete()` drives
  journal rows forward by looking at the disk, which makes filing and crash
  recovery the same code path.
"""
from __future__ import annotations

import errno
import logging
import os
import time
from collections import Counter
from pathlib import Path

from sqlite_utils import Database

from .. import crashpoints, paths
from ..store import photos
from ..store.db import durably, transaction
from .fsops import Collision, SourceChanged, fsync_dir, holds_source, place
from .names import TEMP_PREFIX, Member, StemsInUse, plan

log = logging.getLogger(__name__)


class Filer:
    """Files photos through the journal. `call` runs a function on the DB writer."""

    def __init__(self, call, library: Path):
        self.call = call
        self.library = Path(library)

    def file(self, photo_id: int, members: list[Member], dest_dir: Path, copy: bool) -> dict[str, str]:
        """Place every member in dest_dir under one stem; return {role-or-src: dst}."""
        if not self.library.is_dir() and paths.below_absent_mount(self.library):
            # An unmounted disk: creating the library would put the photos on
            # the disk below the mount point. The caller retries.
            raise OSError(errno.ENOENT, f"the library {self.library} is not there (is its disk mounted?)")
        for _ in range(50):
            dsts = plan(dest_dir, members, set(self._reserved(dest_dir)))
            now = time.time()

            def journal(db: Database) -> None:
                # Durable before the first link: a power cut must not leave a
                # file in the library that the journal has never heard of.
                with durably(db), transaction(db):
                    for m in members:
                        db.execute(
                            "INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
                            " VALUES (?, ?, ?, ?, ?, 'planned', ?, ?)",
                            (photo_id, m.role, m.src, dsts[m.src], int(copy), now, now))
                    photos.start_filing(db, photo_id, now)
            self.call(journal)
            try:
                return self.complete(photo_id)
            except Collision as c:
                log.info("name %s was taken while filing; choosing another", c)
                self.unplan(photo_id)
        raise RuntimeError(f"could not find a free name for photo {photo_id}")

    def file_many(self, items: list[tuple[int, list[Member], Path]], copy: bool
                  ) -> tuple[dict[int, dict[str, str]], list[int]]:
        """File several photos, each as `file` would, sharing the durable steps between them.

        Each photo still goes plan (durable) -> link -> fsync of the folder -> placed
        (durable) -> unlink of its sources -> fsync of their folders -> done, so at every
        instant each one is in a state `complete` and recovery know. What is shared is the
        waiting: one durable commit for every photo's plan, one fsync per folder for all the
        links into it, one durable commit for all the placements, one fsync per inbox folder
        for all the unlinks, one commit for the ends. On a cluster that is most of what the
        coordinator spends on a photo; one at a time, the same fsyncs were paid per photo.

        Returns the photos filed (their placements, as `file` returns them) and the photos
        that left the batch, in order: a name taken meanwhile, a source changed or gone, a
        full disk. Their journal rows say how far each got, and the caller files each alone
        (`file` or `complete`), which is where every such case is handled. The filed ones'
        moves are left `placed`: the caller marks them done in the transaction that records
        the photos as filed (`outcomes.file_many`).
        """
        if not items:
            return {}, []
        if not self.library.is_dir() and paths.below_absent_mount(self.library):
            return {}, [pid for pid, _, _ in items]
        reserved: dict[str, set[str]] = {}
        in_use: dict[str, StemsInUse] = {}
        into = Counter(str(dest_dir) for _, _, dest_dir in items)
        dsts: dict[int, dict[str, str]] = {}
        for photo_id, members, dest_dir in items:
            key = str(dest_dir)
            if key not in reserved:
                reserved[key] = set(self._reserved(dest_dir))
                in_use[key] = StemsInUse(dest_dir, into[key])
            dsts[photo_id] = plan(dest_dir, members, reserved[key], in_use[key])
            reserved[key] |= set(dsts[photo_id].values())
        now = time.time()
        rows: dict[int, list[dict]] = {}

        def journal(db: Database) -> None:
            with durably(db), transaction(db):
                for photo_id, members, _ in items:
                    for m in members:
                        db.execute(
                            "INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
                            " VALUES (?, ?, ?, ?, ?, 'planned', ?, ?)",
                            (photo_id, m.role, m.src, dsts[photo_id][m.src], int(copy), now, now))
                    photos.start_filing(db, photo_id, now)
                    rows[photo_id] = list(db.query(
                        "SELECT * FROM moves WHERE photo_id = ? AND state = 'planned' ORDER BY id", [photo_id]))
        self.call(journal)
        left: list[int] = []
        folders: set[str] = set()
        for photo_id in list(rows):
            try:
                for r in rows[photo_id]:
                    folders.add(os.path.dirname(r["dst"]))
                    r["sha256"] = place(r["src"], r["dst"], copy, sync_folder=False)
                    r["state"] = "placed"
            except (Collision, SourceChanged, OSError) as e:
                log.info("photo %d is filed on its own: %s", photo_id, e)
                self._leave(photo_id, rows, left, take_back=True)
        # A folder whose links may not last: none of its photos may let a source go.
        self._sync(folders, "fsync_dir", "dst", rows, left, take_back=True)
        placed = [r for photo_rows in rows.values() for r in photo_rows]
        if placed:
            self._placed(placed)
        inbox_folders: set[str] = set()
        for photo_id in list(rows):
            try:
                for r in rows[photo_id]:
                    if copy or not os.path.exists(r["src"]):
                        continue
                    if not holds_source(r["src"], r["dst"], r["sha256"]):
                        raise SourceChanged(f"{r['src']} no longer matches its filed copy {r['dst']}")
                    os.unlink(r["src"])
                    inbox_folders.add(os.path.dirname(r["src"]))
                    crashpoints.hit("unlink_src")
            except (SourceChanged, OSError) as e:
                log.info("photo %d is finished on its own: %s", photo_id, e)
                self._leave(photo_id, rows, left, take_back=False)
        self._sync(inbox_folders, "fsync_src_dir", "src", rows, left, take_back=False)
        return {pid: {r["role"] if r["role"] != "sidecar" else r["src"]: r["dst"] for r in photo_rows}
                for pid, photo_rows in rows.items()}, left

    def _reserved(self, dest_dir: Path) -> list[str]:
        # Unfinished moves only (through the state index): a LIKE over every move ever made
        # would grow with the library.
        prefix = str(dest_dir) + os.sep
        return self.call(lambda db: [r[0] for r in db.execute(
            "SELECT dst FROM moves WHERE state IN ('planned', 'placed')"
            " AND substr(dst, 1, length(:p)) = :p", {"p": prefix})])

    def _sync(self, folders: set[str], step: str, side: str, rows: dict[int, list[dict]], left: list[int],
              take_back: bool) -> None:
        """fsync each folder once; the photos with a file (`side`: dst or src) in a folder that
        cannot be synced leave the batch."""
        for folder in sorted(folders):
            try:
                fsync_dir(folder)
                crashpoints.hit(step)
            except OSError as e:
                for photo_id in [pid for pid, photo_rows in rows.items()
                                 if any(os.path.dirname(r[side]) == folder for r in photo_rows)]:
                    log.info("photo %d is filed on its own: cannot fsync %s: %s", photo_id, folder, e)
                    self._leave(photo_id, rows, left, take_back)

    def _leave(self, photo_id: int, rows: dict[int, list[dict]], left: list[int], take_back: bool) -> None:
        """Take a photo out of a batch. Before any source left, its placements are taken back
        where that is provably safe; its journal rows stay for `file` or `complete`."""
        del rows[photo_id]
        left.append(photo_id)
        if take_back and not self.committed(photo_id):
            try:
                self.unplan(photo_id)
            except OSError as e:
                log.warning("photo %d: cannot take back its placements yet: %s", photo_id, e)

    def plan_one(self, photo_id: int, member: Member, dst: str, copy: bool) -> None:
        """Journal one more member of an already-filed photo (a late raw, JPEG or sidecar)."""
        now = time.time()
        def journal(db: Database) -> None:
            with durably(db):
                db.execute("INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
                           " VALUES (?, ?, ?, ?, ?, 'planned', ?, ?)",
                           (photo_id, member.role, member.src, dst, int(copy), now, now))
        self.call(journal)

    def committed(self, photo_id: int) -> bool:
        """True once a source of the group's unfinished filing has left the inbox.

        From then on the filing can only be finished, never taken back: taking
        it back would leave the moved member in the library with no journal row
        and file the rest of the group without it.
        """
        rows = self.call(lambda db: list(db.query(
            "SELECT * FROM moves WHERE photo_id = ? ORDER BY id", [photo_id])))
        pending = [r["id"] for r in rows if r["state"] != "done"]
        if not pending:
            return False
        # Rows of one filing are journalled together, after any earlier ones.
        attempt = [r for r in rows if r["id"] >= min(pending)]
        return any(r["state"] == "done" or (not r["copy"] and r["state"] == "placed" and not os.path.exists(r["src"]))
                   for r in attempt)

    def unplan(self, photo_id: int) -> None:
        """Take back a group's placements that are provably ours; sources are all still there."""
        rows = self.call(lambda db: list(db.query(
            "SELECT * FROM moves WHERE photo_id = ? AND state != 'done'", [photo_id])))
        for r in rows:
            # 'planned' too: a step after the link can fail (fsync of the folder
            # with EIO) and leave the name placed before the journal says so.
            # Left there, the retry would file the photo a second time as _2.
            if (os.path.lexists(r["dst"]) and os.path.exists(r["src"])
                    and holds_source(r["src"], r["dst"], r["sha256"])):
                os.unlink(r["dst"])
        self.call(lambda db: db.execute(
            "DELETE FROM moves WHERE photo_id = ? AND state != 'done'", (photo_id,)))

    def complete(self, photo_id: int) -> dict[str, str]:
        """Drive this photo's journal rows to done, trusting the disk over the journal."""
        rows = self.call(lambda db: list(db.query(
            "SELECT * FROM moves WHERE photo_id = ? ORDER BY id", [photo_id])))
        placed: list[dict] = []
        for r in rows:
            if r["state"] != "planned":
                continue
            src, dst = r["src"], r["dst"]
            sha = None
            if os.path.lexists(dst):
                if not os.path.exists(src) or not holds_source(src, dst, None):
                    if not os.path.exists(src):
                        # Planned, never placed, and the source is gone: the user
                        # removed it. Nothing of ours to finish.
                        self._set(r["id"], "done")
                        log.warning("source %s vanished before it was filed", src)
                        continue
                    raise Collision(dst)
            elif not os.path.exists(src):
                self._set(r["id"], "done")
                log.warning("source %s vanished before it was filed", src)
                continue
            else:
                sha = place(src, dst, bool(r["copy"]))
            r["state"], r["sha256"] = "placed", sha
            placed.append(r)
        if placed:
            # One durable commit for the group, before any source may go: a
            # crash before it finds each name placed on disk, holding its
            # source's bytes, which is the same as journalled `placed`.
            self._placed(placed)
        # Every member is placed: only now may sources go.
        for r in rows:
            if r["state"] != "placed":
                continue
            if not r["copy"] and os.path.exists(r["src"]):
                if not holds_source(r["src"], r["dst"], r["sha256"]):
                    raise SourceChanged(f"{r['src']} no longer matches its filed copy {r['dst']}")
                src_dir = os.path.dirname(r["src"])
                os.unlink(r["src"])
                crashpoints.hit("unlink_src")
                fsync_dir(src_dir)
                crashpoints.hit("fsync_src_dir")
            self._set(r["id"], "done")
        return {r["role"] if r["role"] != "sidecar" else r["src"]: r["dst"] for r in rows}

    def _set(self, move_id: int, state: str) -> None:
        now = time.time()
        self.call(lambda db: db.execute(
            "UPDATE moves SET state = ?, updated_at = ? WHERE id = ?", (state, now, move_id)))

    def _placed(self, rows: list[dict]) -> None:
        now = time.time()

        def update(db: Database) -> None:
            with durably(db), transaction(db):
                for r in rows:
                    db.execute("UPDATE moves SET state = 'placed', sha256 = COALESCE(?, sha256), updated_at = ?"
                               " WHERE id = ?", (r["sha256"], now, r["id"]))
        self.call(update)

    def unfinished(self) -> list[int]:
        return self.call(lambda db: [r[0] for r in db.execute(
            "SELECT DISTINCT photo_id FROM moves WHERE state IN ('planned', 'placed') ORDER BY photo_id")])

    def record_done(self, photo_id: int, role: str, src: str, dst: str) -> None:
        """Journal a move that already happened (the photographer moved a file by hand),
        so the chain from the inbox to where the file is now stays complete."""
        now = time.time()
        self.call(lambda db: db.execute(
            "INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 0, 'done', ?, ?)", (photo_id, role, src, dst, now, now)))

    def sweep_temp_files(self) -> int:
        """Remove temp files a crash left in the library; their sources are still intact."""
        n = 0
        if not self.library.exists():
            return 0
        for folder, _dirs, files in os.walk(self.library):
            for name in files:
                if name.startswith(TEMP_PREFIX) and name.endswith(".tmp"):
                    os.unlink(os.path.join(folder, name))
                    n += 1
        if n:
            log.info("removed %d leftover temp file(s) from the library", n)
        return n


def collapse(db: Database, photo_id: int) -> None:
    """Fold a photo's finished hops into one move per file: inbox -> 5-stars followed by
    5-stars -> 2-stars becomes inbox -> 2-stars.

    A photo refiled by an override moves again inside the library. Undo,
    duplicate detection and the report all read one row per source, from the
    inbox to where the file is now; this keeps that true however often the
    photographer changes their mind. A hop with no earlier one (a sidecar or
    JPEG starsort itself wrote into the library) is not a move back to make:
    its `artifacts` row follows the file instead. Call inside a transaction;
    idempotent, so recovery can run it again after a crash.
    """
    rows = list(db.query("SELECT id, src, dst, state FROM moves WHERE photo_id = ? ORDER BY id", [photo_id]))
    if any(r["state"] != "done" for r in rows):
        return
    heads: dict[str, dict] = {}          # where a file is now -> the move that brought it from the inbox
    for r in rows:
        head = heads.pop(r["src"], None)
        if head is not None:
            db.execute("DELETE FROM moves WHERE id = ?", [r["id"]])
            db.execute("UPDATE moves SET dst = ? WHERE id = ?", [r["dst"], head["id"]])
            head["dst"] = r["dst"]
            heads[r["dst"]] = head
        elif db.execute("SELECT 1 FROM artifacts WHERE path = ?", [r["src"]]).fetchone() is not None:
            db.execute("DELETE FROM moves WHERE id = ?", [r["id"]])
        else:
            heads[r["dst"]] = r
            continue
        # Whatever starsort recorded about the file (a sidecar it wrote, the
        # rating inside a JPEG, a converted JPEG) follows it.
        db.execute("UPDATE artifacts SET path = ? WHERE path = ?", [r["dst"], r["src"]])
