"""The service: one photo's path from the watcher to its star folder.

    start-up: migrate -> recover interrupted moves -> sweep temp files -> scan
    loop:     settle (inbox -> queued photos)
              dispatch queued photos to analysis workers (pipeline.ANALYSIS)
              store each result -> cluster -> file into <library>/N-stars -> XMP
              rescan every rescan_interval; restart dead observers
    SIGTERM:  stop intake, finish the filing in hand, stop workers, exit 0

This thread is the only one that decides; the watcher threads only record
paths and the writer thread only writes. A photo in analysis stays `queued`
in the database until its result is stored, so stopping at any moment (even
`kill -9`) loses at most that analysis, which the next start repeats.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from . import cluster, crashpoints, filetype, settle, watcher, xmp
from .config import Config
from .db import Writer, transaction
from .filing import (QUARANTINE, Collision, Filer, Member, SourceChanged, dest_name, find_sidecars, photo_stem,
                     star_folder)
from .filing import sha256_file as filing_sha
from .job import BadInput
from .worker import Pool

log = logging.getLogger(__name__)

CRASH_ATTEMPTS = 2      # a photo that crashes the decoder twice is quarantined
ERROR_ATTEMPTS = 3      # a photo that hits an unexpected error 3 times is failed


class Service:
    def __init__(self, cfg: Config, config_path: Path | None = None, once: bool = False):
        self.cfg = cfg
        self.config_path = config_path
        self.once = once
        self.library = Path(cfg.library)
        # rate-in-place keeps the originals where they are, as copy mode does,
        # so it shares copy mode's "seen" bookkeeping.
        self.in_place = cfg.mode == "rate-in-place"
        self.copy = cfg.mode in ("copy", "rate-in-place")
        # `starsort sort --sample`: only these paths are taken from the inbox.
        self.only: set[str] | None = None
        # `starsort sort SRC`: the run touches only photos under this folder
        # (it ends with a separator); the daemon's own queue in the same
        # database is left for the daemon.
        self.scope: str | None = None
        self._stop = threading.Event()
        self.writer: Writer | None = None
        self.filer: Filer | None = None
        self.pool: Pool | None = None
        self.watcher: watcher.Watcher | None = None
        self._last_scan = 0.0
        self._last_heartbeat = 0.0
        self._scan_requests: set[str] = set()
        self._retry_at: dict[int, float] = {}
        self._raw_only: set[int] = set()    # pairs whose JPEG the decoder refused
        self._scan_lock = threading.Lock()

    # ---- plumbing ---------------------------------------------------------------

    def call(self, fn):
        return self.writer.call(fn)

    def event(self, level: str, message: str) -> None:
        message = filetype.printable(message)  # `status` prints it on one line
        getattr(log, level.lower())(message)
        now = time.time()
        self.writer.submit(lambda db: db.execute(
            "INSERT INTO events (at, level, message) VALUES (?, ?, ?)", (now, level, message)))

    def stop(self, *_: Any) -> None:
        if not self._stop.is_set():
            log.info("stopping: finishing the file in hand")
        self._stop.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)

    # ---- life cycle -------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        for d in [*[star_folder(s) for s in range(1, 6)], QUARANTINE]:
            try:
                (self.library / d).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                # An unmounted or read-only library is not a reason to stop
                # watching: filing retries until it is back.
                log.error("cannot create %s: %s", self.library / d, e)
        self.writer = Writer(self.cfg.database).start()
        self.filer = Filer(self.call, self.library)
        now = time.time()
        self.call(lambda db: db.execute(
            "INSERT INTO service (id, pid, started_at, heartbeat_at, stopped_at, running_as_root, config_path)"
            " VALUES (1, ?, ?, ?, NULL, ?, ?) ON CONFLICT(id) DO UPDATE SET pid = excluded.pid,"
            " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL,"
            " running_as_root = excluded.running_as_root, config_path = excluded.config_path",
            (os.getpid(), now, now, int(running_as_root), str(self.config_path or ""))))
        if running_as_root:
            self.event("WARNING", "starsort is running as root. It is meant to run as the photographer's "
                       "user: files it creates will belong to root.")
        try:
            self.recover()
            self.pool = Pool(self.cfg.model_dump_json(), self.cfg.workers, self.cfg.analysis.timeout_seconds,
                             serve=crashpoints.test_analyser())
            self.scan_all()
            if not self.once:
                self.watcher = watcher.Watcher(self.cfg.inboxes, self.library, self._record, self._request_scan)
                self.watcher.start()
                self.scan_all()  # closes the gap between the first scan and the watch
            self.loop()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        if self.watcher:
            self.watcher.stop()
        if self.pool:
            self.pool.close()
        if self.writer and self.writer.is_alive():
            now = time.time()
            self.call(lambda db: db.execute("UPDATE service SET stopped_at = ?, heartbeat_at = ? WHERE id = 1",
                                            (now, now)))
            self.writer.close()
        log.info("stopped")

    def recover(self) -> None:
        """Finish what a crash interrupted, looking at the disk rather than trusting the journal."""
        self.filer.sweep_temp_files()
        # Unfinished journal rows, and photos whose moves all finished but
        # whose own row was not updated before the crash.
        in_filing = self.call(lambda db: [r[0] for r in db.execute(
            "SELECT id FROM photos WHERE state = 'filing' AND id IN (SELECT photo_id FROM moves)")])
        for photo_id in sorted(set(self.filer.unfinished()) | set(in_filing)):
            log.info("finishing the interrupted filing of photo %d", photo_id)
            try:
                self._finish_filing(photo_id, self.filer.complete(photo_id))
            except (Collision, SourceChanged) as e:
                log.warning("interrupted filing of photo %d cannot be finished as planned (%s); filing again", photo_id, e)
                self.filer.unplan(photo_id)
                # A 'done' photo was interrupted while a late member followed it:
                # the photo itself is filed; the member, back in the inbox, is
                # found by the scan and follows again.
                self.call(lambda db: db.execute(
                    "UPDATE photos SET state = 'analysed' WHERE id = ? AND state != 'done'", (photo_id,)))
            except OSError as e:
                # The library's disk is full or gone. Dying here would have the
                # service manager restart us into the same error forever; the
                # sources are all still in the inbox, so the photo waits and is
                # filed again by the retry that covers any filing error (which
                # finishes, rather than takes back, a filing whose sources began to leave).
                self.event("ERROR", f"cannot finish the interrupted filing of photo {photo_id}: {e}; will retry")
                try:
                    if not self.filer.committed(photo_id):
                        self.filer.unplan(photo_id)
                except OSError as e2:
                    log.warning("photo %d: cannot take back its partial placement yet: %s", photo_id, e2)
                msg = f"cannot file: {e}"
                self.call(lambda db: db.execute(
                    "UPDATE photos SET state = 'analysed', error = ? WHERE id = ? AND state != 'done'",
                    (msg, photo_id)))

        def reset(db: Database) -> None:
            # 'filing' without journal rows: the crash came before the plan was written.
            db.execute("UPDATE photos SET state = 'analysed' WHERE state = 'filing'"
                       " AND id NOT IN (SELECT photo_id FROM moves)")
            # Failed photos get a fresh chance at each start.
            db.execute("UPDATE photos SET state = 'queued', attempts = 0 WHERE state = 'failed'")
            # A late pair member that followed its photo (follow()) is recorded
            # on the photo only after its move; a crash in between leaves the
            # journal as the one place that knows the pair.
            db.execute("UPDATE photos SET pair_original_path = m.src, pair_path = m.dst"
                       " FROM (SELECT photo_id, src, dst FROM moves WHERE role = 'pair' AND state = 'done') AS m"
                       " WHERE photos.id = m.photo_id AND photos.pair_original_path IS NULL")
        self.call(reset)

    # ---- intake -----------------------------------------------------------------

    def _record(self, path: str) -> None:
        self.writer.submit(lambda db: settle.record(db, path))

    def _request_scan(self, folder: str) -> None:
        with self._scan_lock:
            self._scan_requests.add(folder)

    def scan_all(self) -> None:
        for inbox in self.cfg.inboxes:
            inbox.mkdir(parents=True, exist_ok=True)
            self._scan(inbox)
        self._last_scan = time.monotonic()

    def _scan(self, folder: Path | str) -> None:
        root = next((b for b in self.cfg.inboxes if str(folder).startswith(str(b))), Path(folder))
        paths = [p for p in watcher.walk(Path(folder), self.library) if not filetype.is_ignored(p, root)
                 and (self.only is None or p in self.only)]
        new = self.call(lambda db: settle.rescan(db, paths, self.copy))
        if new:
            log.info("scan of %s found %d new file(s)", folder, new)

    # ---- the loop ---------------------------------------------------------------

    def loop(self) -> None:
        # Two moments of start-up: intake is ready now (inboxes scanned and
        # watched, new files are recorded and queued); analysis is ready once
        # the workers have imported torch and warmed MTCNN up, seconds later.
        log.info("watching %d inbox(es); analysis workers starting", len(self.cfg.inboxes))
        announced = False
        while not self._stop.is_set():
            if self.pool.fatal:
                raise RuntimeError(self.pool.fatal)
            if not announced and self.pool.ready() == self.cfg.workers:
                log.info("ready: %d analysis worker(s)", self.cfg.workers)
                announced = True
            with self._scan_lock:
                requests, self._scan_requests = self._scan_requests, set()
            for folder in requests:
                self._scan(folder)
            if not self.once and time.monotonic() - self._last_scan >= self.cfg.rescan_interval:
                self.scan_all()
                if self.watcher:
                    self.watcher.check()
            waiting = self.settle()
            self.dispatch()
            for photo_id, status, payload in self.pool.poll(0.2):
                if self._stop.is_set() and status in ("crashed", "timeout"):
                    continue  # workers are being stopped; the photo stays queued
                self.handle(photo_id, status, payload)
            self.heartbeat()
            if self.once and waiting == 0 and self._idle():
                log.info("inboxes processed; exiting (--once)")
                return

    def _idle(self) -> bool:
        if self.pool.busy():
            return False
        mine = "(:scope IS NULL OR substr({0}, 1, length(:scope)) = :scope)"
        pending = self.call(lambda db: db.execute(
            f"SELECT (SELECT count(*) FROM photos WHERE state IN ('queued', 'analysed', 'filing')"
            f" AND {mine.format('original_path')}), (SELECT json_group_array(path) FROM inbox"
            f" WHERE {mine.format('path')})", {"scope": self.scope}).fetchone())
        waiting_files = [p for p in json.loads(pending[1]) if self.only is None or p in self.only]
        return pending[0] + len(waiting_files) == 0

    def heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat >= 5:
            self._last_heartbeat = time.monotonic()
            now = time.time()
            self.writer.submit(lambda db: db.execute("UPDATE service SET heartbeat_at = ? WHERE id = 1", (now,)))

    def settle(self) -> int:
        def step(db: Database) -> tuple[list[dict], int]:
            with transaction(db):
                ready, waiting = settle.check(db, self.cfg.settle_seconds, scope=self.scope)
                if self.only is not None:
                    ready = [r for r in ready if r.path in self.only]
                actions = settle.admit(db, ready, self.copy) if ready else []
            return actions, waiting
        actions, waiting = self.call(step)
        for a in actions:
            if self._stop.is_set():
                break
            if a["action"] == "follow":
                self.follow(a["photo"], a["path"], a["role"])
            else:
                self.quarantine_file(a["path"], a["reason"])
        return waiting

    def dispatch(self) -> None:
        if self._stop.is_set() or not self.pool.slots():
            return
        busy = set(self.pool.in_flight())
        now = time.monotonic()
        waiting = [i for i, t in self._retry_at.items() if t > now]
        rows = self.call(lambda db: list(db.query(
            "SELECT * FROM photos WHERE state IN ('queued', 'analysed') AND id NOT IN (SELECT value FROM json_each(:waiting))"
            " AND (:scope IS NULL OR substr(original_path, 1, length(:scope)) = :scope) ORDER BY id LIMIT :n",
            {"waiting": json.dumps(waiting), "n": len(busy) + self.pool.slots() + 8, "scope": self.scope})))
        for row in rows:
            if row["id"] in busy:
                continue
            if row["state"] == "analysed":
                # Analysis is stored but filing did not happen (a crash, a stop, a full disk).
                if self._retry_at.get(row["id"], 0) <= time.monotonic():
                    self._retry_at.pop(row["id"], None)
                    self.file(row["id"])
                continue
            path = row["pair_original_path"] or row["original_path"]
            if row["id"] in self._raw_only:
                path = row["original_path"]
            try:
                kind = filetype.decode_kind(path)
            except BadInput as e:
                if row["pair_original_path"]:
                    # The JPEG of a pair is unusable: rate the pair on its raw.
                    try:
                        kind, path = filetype.decode_kind(row["original_path"]), row["original_path"]
                    except BadInput:
                        self.quarantine(row["id"], str(e))
                        continue
                    except FileNotFoundError:
                        self.vanished(row["id"])
                        continue
                    except OSError as e2:
                        self.unreadable(row["id"], e2)
                        continue
                else:
                    self.quarantine(row["id"], str(e))
                    continue
            except FileNotFoundError:
                self.vanished(row["id"])
                continue
            except OSError as e:
                self.unreadable(row["id"], e)
                continue
            if not row["pair_original_path"] and kind != row["kind"]:
                # Judged by its bytes: a JPEG named .nef is a JPEG (its name is kept).
                self.call(lambda db: db.execute("UPDATE photos SET kind = ? WHERE id = ?", (kind, row["id"])))
            if not self.pool.submit(row["id"], path, kind):
                break

    # ---- results ----------------------------------------------------------------

    def handle(self, photo_id: int, status: str, payload: Any) -> None:
        if status == "ok":
            self._raw_only.discard(photo_id)
            self.store(photo_id, payload)
            self.file(photo_id)
        elif status == "bad":
            if not self._try_raw_instead(photo_id, payload):
                self.quarantine(photo_id, payload)
        elif status == "vanished":
            self.vanished(photo_id)
        elif status in ("crashed", "timeout", "error"):
            limit = ERROR_ATTEMPTS if status == "error" else CRASH_ATTEMPTS
            attempts = self.call(lambda db: db.execute(
                "UPDATE photos SET attempts = attempts + 1, error = ? WHERE id = ? RETURNING attempts",
                (str(payload).splitlines()[0], photo_id)).fetchone()[0])
            if attempts < limit:
                log.warning("photo %d: %s; trying again", photo_id, str(payload).splitlines()[0])
            elif status == "error":
                self.fail(photo_id, str(payload).splitlines()[0])
                log.debug("%s", payload)
            elif self._try_raw_instead(photo_id, payload):
                self.call(lambda db: db.execute("UPDATE photos SET attempts = 0 WHERE id = ?", (photo_id,)))
            else:
                self.quarantine(photo_id, payload)

    def _try_raw_instead(self, photo_id: int, why: str) -> bool:
        """A pair whose JPEG failed analysis is analysed again on its raw (once).

        A card error often cuts the JPEG of a pair while the raw, the
        photographer's real original, is whole.
        """
        row = self._photo(photo_id)
        if not row["pair_original_path"] or photo_id in self._raw_only:
            self._raw_only.discard(photo_id)
            return False
        self._raw_only.add(photo_id)
        self.event("WARNING", f"the JPEG of {row['original_path']} cannot be analysed ({str(why).splitlines()[0]});"
                   " rating the pair on its raw")
        return True

    def store(self, photo_id: int, r: dict) -> None:
        b = cluster.bands(r["phash"]) if r.get("phash") else (None,) * 4
        ts = _epoch(r.get("captured_at"))
        faces = r.get("faces") or []
        w, h = (r.get("original_size") or (None, None))

        def write(db: Database) -> None:
            with transaction(db):
                db.execute("DELETE FROM faces WHERE photo_id = ?", (photo_id,))
                for f in faces:
                    x1, y1, x2, y2 = f["box"]
                    db.execute(
                        "INSERT INTO faces (photo_id, x1, y1, x2, y2, landmarks, probability, blur_score, blurry)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (photo_id, x1, y1, x2, y2, json.dumps(f["landmarks"]), f["probability"],
                         f["blur_score"], None if f["blurry"] is None else int(f["blurry"])))
                db.execute(
                    "UPDATE photos SET state = 'analysed', error = NULL, stars = ?, rated_on = ?, faces = ?,"
                    " blurry_faces = ?, face_scores = ?, frame_score = ?, sharpness = ?, phash = ?,"
                    " b0 = ?, b1 = ?, b2 = ?, b3 = ?, captured_ts = ?, captured_at = ?, camera_model = ?,"
                    " decode_source = ?, width = ?, height = ?, updated_at = ? WHERE id = ?",
                    (r["stars"], r["rated_on"], len(faces), sum(1 for f in faces if f["blurry"]),
                     json.dumps([f["blur_score"] for f in faces]), r.get("frame_score"), r.get("sharpness"),
                     r.get("phash"), *b, ts, r.get("captured_at"), r.get("camera_model"),
                     r.get("decode_source"), w, h, time.time(), photo_id))
                db.execute("UPDATE photos SET exif = ?, exif_missing = ?, exif_problems = ? WHERE id = ?",
                           (json.dumps(r.get("exif") or {}),
                            None if r.get("exif_missing") is None else json.dumps(r["exif_missing"]),
                            json.dumps(r.get("exif_problems") or []), photo_id))
                cluster.assign(db, photo_id, self.cfg.cluster)
        self.call(write)
        log.info("photo %d: %s stars (%s; %d face(s), %d blurry) in %.2fs", photo_id, r["stars"],
                 r["rated_on"], len(faces), sum(1 for f in faces if f["blurry"]), r.get("seconds", 0))

    # ---- filing -----------------------------------------------------------------

    def _members(self, row: dict) -> list[Member]:
        members = [Member("primary", row["original_path"])]
        if row["pair_original_path"]:
            members.append(Member("pair", row["pair_original_path"]))
        members += [Member("sidecar", p) for p in find_sidecars([m.src for m in members])
                    if p not in {m.src for m in members}]
        return [m for m in members if os.path.exists(m.src)]

    def _photo(self, photo_id: int) -> dict:
        return self.call(lambda db: next(iter(db.query("SELECT * FROM photos WHERE id = ?", [photo_id]))))

    def file(self, photo_id: int) -> None:
        row = self._photo(photo_id)
        if self.in_place:
            self._rate_in_place(row, "done")
            return
        if row["stars"] is None:
            # A quarantine that could not be filed (full disk) and is retried.
            self._file_into(row, self.library / QUARANTINE, final_state="quarantined")
            return
        self._file_into(row, self.library / star_folder(int(row["stars"])), final_state="done")

    def quarantine(self, photo_id: int, reason: str) -> None:
        row = self._photo(photo_id)
        self.event("WARNING", f"quarantined {row['original_path']}: {reason}")
        self.call(lambda db: db.execute("UPDATE photos SET error = ? WHERE id = ?", (reason, photo_id)))
        if self.in_place:
            self._rate_in_place(row, "quarantined")
            return
        self._file_into(row, self.library / QUARANTINE, final_state="quarantined")

    def quarantine_file(self, path: str, reason: str) -> None:
        now = time.time()
        photo_id = self.call(lambda db: db.execute(
            "INSERT INTO photos (original_path, kind, state, error, queued_at, updated_at)"
            " VALUES (?, 'other', 'queued', ?, ?, ?) RETURNING id", (path, reason, now, now)).fetchone()[0])
        self.quarantine(photo_id, reason)

    def unreadable(self, photo_id: int, e: OSError) -> None:
        """A file starsort may not read stays where it is, reported, and is tried again.

        Not quarantined: the file is most likely fine (copied in by another
        user or tool), and a file that cannot be read cannot have its copy
        verified, so moving it would be moving it blind.
        """
        what = "permission denied" if isinstance(e, PermissionError) else f"cannot read it ({e.strerror or e})"
        reason = f"{what}: left in the inbox; it is filed once starsort can read it"
        if self.once:
            self.fail(photo_id, reason)
            return
        self._retry_at[photo_id] = time.monotonic() + self.cfg.rescan_interval
        row = self._photo(photo_id)
        if row["error"] != reason:  # reported once per file, not once per retry
            self.call(lambda db: db.execute("UPDATE photos SET error = ?, updated_at = ? WHERE id = ?",
                                            (reason, time.time(), photo_id)))
            self.event("ERROR", f"cannot read {row['original_path']}: {reason}")

    def vanished(self, photo_id: int) -> None:
        # The user deleted or moved it (a renamed folder is found again by the
        # scan, under its new name): worth a warning, not an error per file.
        reason = "the file disappeared from the inbox before it was filed"
        self.event("WARNING", f"photo {photo_id}: {reason}")
        self.call(lambda db: db.execute(
            "UPDATE photos SET state = 'failed', error = ?, updated_at = ? WHERE id = ?",
            (reason, time.time(), photo_id)))

    def fail(self, photo_id: int, reason: str) -> None:
        self.event("ERROR", f"photo {photo_id} failed: {reason}")
        self.call(lambda db: db.execute(
            "UPDATE photos SET state = 'failed', error = ?, updated_at = ? WHERE id = ?",
            (reason, time.time(), photo_id)))

    def _file_into(self, row: dict, dest: Path, final_state: str) -> None:
        committed = self.filer.committed(row["id"])
        members = self._members(row)
        if not members and not committed:
            self.vanished(row["id"])
            return
        try:
            if committed:
                # An earlier attempt failed after a source had left: finish it.
                placed = self.filer.complete(row["id"])
            else:
                placed = self.filer.file(row["id"], members, dest, self.copy)
        except (SourceChanged, OSError) as exc:
            e = exc if isinstance(exc, OSError) else OSError(errno.EAGAIN, str(exc))
            if not self.filer.committed(row["id"]):
                # No source has left yet: the placements are taken back and
                # the sources are intact.
                self._unplan(row["id"])
                if isinstance(exc, SourceChanged):
                    log.warning("%s; it will be analysed again", exc)
                    self.call(lambda db: db.execute("UPDATE photos SET state = 'queued' WHERE id = ?", (row["id"],)))
                    return
            # Disk full, read-only or unmounted library, permissions, or a
            # filing that must be finished rather than taken back.
            # The service retries after rescan_interval, so it resumes by
            # itself once the disk is repaired; --once gives up (and the next
            # start's recovery finishes a filing that had begun removing sources).
            if self.once:
                self.fail(row["id"], f"cannot file into {dest}: {e}")
            else:
                self._retry_at[row["id"]] = time.monotonic() + self.cfg.rescan_interval
                msg = f"cannot file into {dest}: {e}"
                self.call(lambda db: db.execute("UPDATE photos SET state = 'analysed', error = ? WHERE id = ?",
                                                (msg, row["id"])))
                # Once per photo and cause: a full disk retried every
                # rescan_interval must not bury the log in identical errors.
                if (row.get("error") or "").startswith(f"cannot file into {dest}: [Errno {e.errno}]"):
                    log.info("photo %d still cannot be filed into %s: %s", row["id"], dest, e.strerror or e)
                else:
                    self.event("ERROR", f"cannot file {row['original_path']} into {dest}: {e}; will retry")
            return
        self._finish_filing(row["id"], placed, final_state)

    def _unplan(self, photo_id: int) -> None:
        try:
            self.filer.unplan(photo_id)
        except OSError as e:
            # The journal rows stay; start-up recovery looks at the disk again.
            self.event("ERROR", f"cannot take back the placements of photo {photo_id}: {e}")

    def _finish_filing(self, photo_id: int, placed: dict[str, str], final_state: str | None = None) -> None:
        row = self._photo(photo_id)
        if final_state is None:
            final_state = "quarantined" if Path(placed.get("primary", "")).parent.name == QUARANTINE else "done"
        primary = placed.get("primary") or row["current_path"]
        pair = placed.get("pair") or row["pair_path"]
        now = time.time()

        def finish(db: Database) -> None:
            with transaction(db):
                db.execute("UPDATE photos SET state = ?, current_path = ?, pair_path = ?, updated_at = ? WHERE id = ?",
                           (final_state, primary, pair, now, photo_id))
                for m in db.query("SELECT src, dst FROM moves WHERE photo_id = ?", [photo_id]):
                    try:
                        st = os.stat(m["dst"])
                    except FileNotFoundError:
                        continue
                    db.execute("INSERT OR IGNORE INTO seen (path, size, mtime_ns, photo_id) VALUES (?, ?, ?, ?)",
                               (m["src"], st.st_size, st.st_mtime_ns, photo_id))
        self.call(finish)
        if final_state == "done":
            self.write_xmp(photo_id, [p for p in (primary, pair) if p])
            self.relabel(row["cluster_id"])
            log.info("filed %s -> %s", os.path.basename(row["original_path"]), primary)
        else:
            log.info("quarantined %s -> %s", os.path.basename(row["original_path"]), primary)

    def follow(self, photo: dict, path: str, role: str) -> None:
        """File a late pair member or sidecar next to its already-filed photo."""
        if self.in_place:
            # It already lies next to its photo: rate it where it is.
            now = time.time()
            if role == "pair":
                self.call(lambda db: db.execute(
                    "UPDATE photos SET pair_original_path = ?, pair_path = ?, updated_at = ? WHERE id = ?",
                    (path, path, now, photo["id"])))
            self.write_xmp(photo["id"], [path if role == "pair" else photo["current_path"]])
            self._remember_in_place(photo["id"], [path])
            return
        # Same folder, same (possibly suffixed) stem as the photo it belongs to.
        dest = Path(photo["current_path"]).parent
        new_stem = os.path.splitext(os.path.basename(photo["current_path"]))[0]
        dst = dest / dest_name(Member(role, path), photo_stem(photo["original_path"]), new_stem)
        if os.path.lexists(dst):
            self.quarantine_file(path, f"{dst.name} already exists next to its photo")
            return
        now = time.time()
        self.call(lambda db: db.execute(
            "INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'planned', ?, ?)", (photo["id"], role, path, str(dst), int(self.copy), now, now)))
        try:
            self.filer.complete(photo["id"])
        except (OSError, Collision, SourceChanged) as e:
            # A full or missing library must not stop the service. The file
            # stays in the inbox and the next rescan brings it back here (or,
            # if it had already left the inbox, the next start finishes it).
            if not self.filer.committed(photo["id"]):
                self._unplan(photo["id"])
            self.event("ERROR", f"cannot file {path} next to its photo: {e}; will retry")
            return
        if role == "pair":
            self.call(lambda db: db.execute(
                "UPDATE photos SET pair_original_path = ?, pair_path = ?, updated_at = ? WHERE id = ?",
                (path, str(dst), now, photo["id"])))
            self.write_xmp(photo["id"], [str(dst)])
        else:
            self.write_xmp(photo["id"], [photo["current_path"]])
        log.info("filed %s next to its photo -> %s", os.path.basename(path), dst)

    # ---- rate in place --------------------------------------------------------------

    def _rate_in_place(self, row: dict, final_state: str) -> None:
        """mode: rate-in-place: the photo stays where it is; only its XMP changes."""
        files = [p for p in (row["original_path"], row["pair_original_path"]) if p]
        if not any(os.path.exists(f) for f in files):
            self.vanished(row["id"])
            return
        now = time.time()
        self.call(lambda db: db.execute(
            "UPDATE photos SET state = ?, current_path = ?, pair_path = ?, updated_at = ? WHERE id = ?",
            (final_state, row["original_path"], row["pair_original_path"], now, row["id"])))
        if final_state == "done":
            self.write_xmp(row["id"], files)
            self.relabel(row["cluster_id"])
            log.info("rated %s in place: %s stars", os.path.basename(row["original_path"]), row["stars"])
        else:
            log.info("left %s in place (not rated: %s)", os.path.basename(row["original_path"]), row["error"])
        self._remember_in_place(row["id"], files)

    def _remember_in_place(self, photo_id: int, files: list[str]) -> None:
        # Written after any XMP went into a JPEG, so the rescan that follows
        # sees the file as it now is and does not queue it again.
        def remember(db: Database) -> None:
            for f in files:
                try:
                    st = os.stat(f)
                except FileNotFoundError:
                    continue
                db.execute("INSERT OR IGNORE INTO seen (path, size, mtime_ns, photo_id) VALUES (?, ?, ?, ?)",
                           (f, st.st_size, st.st_mtime_ns, photo_id))
        self.call(remember)

    # ---- XMP ----------------------------------------------------------------------

    def write_xmp(self, photo_id: int, files: list[str], label_only: bool = False) -> None:
        """Write the photo's rating, and its pick label, for every file of it in `files`.

        Every sidecar written is recorded in `artifacts` (with the bytes it
        had before our first merge) so that `starsort undo` can take it back.
        """
        x = self.cfg.xmp
        row = self._photo(photo_id)
        stars = row["stars"]
        if not x.enabled or not stars:
            return
        rating = xmp.REJECTED if int(stars) == 1 and x.rate_rejects_as == -1 else int(stars)
        label = x.pick_label if self._is_burst_pick(row) else None
        unlabel = row["xmp_label"] if label is None else None
        if label_only:
            rating = None
        wrote_label = False
        for f in files:
            photo = Path(f)
            targets = [s for s in xmp.sidecar_paths(photo, "both")
                       if s in xmp.sidecar_paths(photo, x.sidecar_naming) or os.path.lexists(s)]
            try:
                before = {str(s): _small_file(s) for s in targets}
            except OSError as e:
                # Unreadable: merging blind could lose another tool's fields,
                # and undo could not give the file back as it was.
                self.event("WARNING", f"cannot read the sidecar of {f} ({e}); its rating is not written")
                continue
            try:
                written = xmp.write_rating(photo, rating, x.sidecar_naming, label=label, unlabel=unlabel)
                wrote_label = True
            except xmp.XmpError as e:
                written = e.written
                self.event("WARNING", f"could not write the XMP rating for {f}: {e}")
            except Exception as e:  # noqa: BLE001 - a sidecar must never stop filing
                written = []
                self.event("WARNING", f"could not write the XMP rating for {f}: {e}")
            for sidecar in written:
                self._record_artifact(photo_id, str(sidecar), "sidecar", before.get(str(sidecar)))
            if x.xmp_in_jpeg and filetype.ext_kind(f) == "jpeg" and row["kind"] != "other":
                try:
                    xmp.write_rating_in_jpeg(photo, rating, label=label, unlabel=unlabel)
                    self._record_artifact(photo_id, f, "jpeg-xmp", b"")
                    if self.in_place:
                        # The original changed size and mtime: without this, the
                        # next rescan would take it for a new photo.
                        self._remember_in_place(photo_id, [f])
                except Exception as e:  # noqa: BLE001 - the rating inside a JPEG is a bonus
                    self.event("WARNING", f"could not write the rating into {f}: {e}")
        if wrote_label:
            self.call(lambda db: db.execute("UPDATE photos SET xmp_label = ? WHERE id = ?", (label, photo_id)))

    def relabel(self, cluster_id: int | None) -> None:
        """Move the pick label within a burst: a sharper frame that arrived later
        takes it, and the frame filed earlier as the pick gives it back."""
        if cluster_id is None or not self.cfg.xmp.enabled:
            return
        label = self.cfg.xmp.pick_label
        stale = self.call(lambda db: list(db.query(
            "SELECT p.id, p.current_path, p.pair_path FROM photos p JOIN clusters c ON c.id = p.cluster_id"
            " WHERE p.cluster_id = ? AND p.state = 'done' AND ("
            "  (p.is_pick = 1 AND c.size >= 2 AND p.xmp_label IS NOT ?)"
            "  OR ((p.is_pick = 0 OR c.size < 2) AND p.xmp_label IS NOT NULL))",
            [cluster_id, label])))
        for r in stale:
            self.write_xmp(r["id"], [p for p in (r["current_path"], r["pair_path"]) if p], label_only=True)

    def _is_burst_pick(self, row: dict) -> bool:
        # A photo alone in its cluster is its own pick; labelling every such
        # photo would make the label mean nothing.
        if not row["is_pick"] or row["cluster_id"] is None:
            return False
        size = self.call(lambda db: db.execute("SELECT size FROM clusters WHERE id = ?",
                                               (row["cluster_id"],)).fetchone())
        return bool(size and size[0] >= 2)

    def _record_artifact(self, photo_id: int, path: str, kind: str, before: bytes | None) -> None:
        try:
            sha = filing_sha(path)
        except OSError:
            return
        now = time.time()
        created = int(before is None)
        # The first record of a path keeps what the file held before us.
        self.call(lambda db: db.execute(
            "INSERT INTO artifacts (photo_id, path, kind, created, original, sha256, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256,"
            " updated_at = excluded.updated_at",
            (photo_id, path, kind, created, None if kind != "sidecar" else before, sha, now, now)))


def _small_file(path: Path) -> bytes | None:
    """A sidecar's bytes before we merge into it (None: it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            return f.read(xmp.MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
