"""The service's loop: start up, turn the intake and the workers over, and stop cleanly.

    start-up: migrate -> recover interrupted moves -> sweep temp files -> scan
              -> the review page (a thread) and the library's move watch
    loop:     settle (inbox -> queued photos)
              dispatch queued photos to analysis workers
              each answer -> pipeline.after_analysis (store, bursts, file, ratings);
              answers that came back together -> after_analysis_many, as one batch
              the photographer's requests (the review page, moves by hand)
              previews for photos analysed before there were any, when idle
              rescan every rescan_interval; restart dead observers; heartbeat
    SIGTERM:  stop intake, finish the filing in hand, stop workers, exit 0

`review_only` is `starsort review` with the service stopped: the same loop
without the inboxes and without analysis, so the page's overrides have the
same journal and guarantees.

This thread is the only one that decides; the watcher threads only record
paths and the writer thread only writes. A photo in analysis stays `queued`
in the database until its result is stored, so stopping at any moment (even
`kill -9`) loses at most that analysis, which the next start repeats.
What happens to a photo is not written here: the order is `pipeline.py`'s,
each ending is a function in `library.outcomes`, each state change one in
`store.photos`.
"""
from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import crashpoints, pause, paths, pipeline
from ..analysis import dispatch
from ..analysis.job import Answer, Status
from ..analysis.worker import Pool
from ..config import Config, creates_inbox
from ..intake import pairing, settle, watcher
from ..intake.scan import Scanner
from ..library import outcomes, people, rerate
from ..library.context import Library
from ..library.names import QUARANTINE, star_folder
from ..library.watch import LibraryWatch
from ..store import health, photos, runs, settings
from ..store import people as people_store
from ..store.db import Writer, transaction
from .notifications import Desktop, Notices
from .requests import Requests
from .retry import Retries
from .sdnotify import SystemdNotifier

log = logging.getLogger("starsort.service")


# Seconds from a stop signal to giving up on a clean stop; below the unit's
# TimeoutStopSec (30) so the thread stacks reach the journal first.
STOP_GRACE = float(os.environ.get("STARSORT_STOP_GRACE", "20"))
# Seconds between looks at the service's state for systemd's STATUS= and the
# desktop notifications (store.health.brief: a few indexed counts).
TICK = 2.0
# Seconds between two groupings of new faces into people (each a few matrix products).
PEOPLE_EVERY = 5.0


def _give_up(why: str) -> None:
    log.error("%s: exiting without a clean stop (nothing is lost; the next start finishes any filing in hand)."
              " Where each thread was:", why)
    for handler in logging.getLogger().handlers:
        handler.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(1)


class Service:
    def __init__(self, cfg: Config, config_path: Path | None = None, once: bool = False,
                 review_only: bool = False):
        # The config as config.yaml says it; `cfg` is the one in force, with
        # what the photographer set from the review page (store.settings).
        self.cfg_file = cfg
        self.cfg = cfg
        self.config_path = config_path
        self.once = once
        self.review_only = review_only
        # The review page and the library's move watch serve a running service
        # (or `starsort review`), not a one-off `--once` or `sort`.
        self.serve_page = not once
        self.requests = Requests()
        self.web = None
        self.library_watch: LibraryWatch | None = None
        self.settings_in_force: dict = {}
        # Told the page's port once it listens (`starsort review` prints the address).
        self.on_page = None
        # Photos whose worker job makes only previews: their answers are not analyses.
        self._previews: set[int] = set()
        self._previews_backfilled = False
        # Photos whose worker job only embeds their stored faces (filed before faces were embedded).
        self._embeds: set[int] = set()
        self._embeds_backfilled = False
        self._embed_failed: set[int] = set()
        self.library = Path(cfg.library)
        # `starsort sort --sample`: only these paths are taken from the inbox.
        self.only: set[str] | None = None
        # `starsort sort SRC --scheduler`: the analysis goes to this Dask scheduler's workers.
        self.cluster: str | None = None
        # `starsort sort SRC`: the run touches only photos under this folder
        # (it ends with a separator); the daemon's own queue in the same
        # database is left for the daemon.
        self.scope: str | None = None
        self._stop = threading.Event()
        self.writer: Writer | None = None
        self.lib: Library | None = None
        self.pool: Pool | None = None
        self.watcher: watcher.Watcher | None = None
        self.scanner: Scanner | None = None
        self.retries: Retries | None = None
        self._last_heartbeat = 0.0
        # How the service is doing, for systemd (STATUS=, WATCHDOG=1) and the
        # desktop (notifications): looked at every TICK seconds.
        self.systemd = SystemdNotifier()
        self.notices: Notices | None = None
        self._last_tick = 0.0
        self.paused: dict | None = None
        # People: faces embedded after this face id are grouped at the next quiet moment.
        self._people_seen = 0
        self._people_due = False
        self._people_at = 0.0
        self._deadline: threading.Timer | None = None

    def stop(self, *_: Any) -> None:
        if self._stop.is_set():
            # A second signal: whoever sent it will not wait any longer.
            _give_up("a second stop signal came")
        log.info("stopping: finishing the file in hand")
        self._stop.set()
        # A stop that hangs must still end, and say where it hung, before the
        # service manager's SIGKILL (TimeoutStopSec) makes it a silent death.
        # Exiting mid-filing is safe: the journal is built for kill -9.
        if self._deadline is None:
            self._deadline = threading.Timer(STOP_GRACE, _give_up,
                                             args=(f"still running {STOP_GRACE:g} s after the stop signal",))
            self._deadline.daemon = True
            self._deadline.start()

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)

    # ---- life cycle -------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self._make_library()
        self.writer = Writer(self.cfg.database).start()
        self.cfg, self.settings_in_force = self.writer.call(lambda db: settings.in_force(db, self.cfg_file))
        for key, v in self.settings_in_force.items():
            log.info("%s is %s, set from the review page (config.yaml says %s)", key, v["value"], v["config_value"])
        self.lib = Library(self.cfg, self.writer, once=self.once)
        self.retries = Retries(self.lib, once=self.once)
        self.scanner = Scanner(self.cfg, self.lib.call, self.lib.copy)
        self.scanner.only = self.only
        now = time.time()
        self.lib.call(lambda db: runs.started(db, now, running_as_root, str(self.config_path or "")))
        if running_as_root:
            # Logged, and shown by `status` under its warnings (from the service
            # row): not an event, so it never passes for the last error.
            log.warning("starsort is running as root. It is meant to run as the photographer's "
                        "user: files it creates will belong to root.")
        try:
            pipeline.recover(self.lib)
            if self.cfg.people.enabled and (dropped := self.lib.call(people_store.drop_other_models)):
                log.info("the face model changed: %d face vector(s) of the old one dropped; the faces are"
                         " embedded again in the background", dropped)
            self.pool = self._pool()
            if self.serve_page:
                self._start_page()
            if self.review_only:
                self.loop()
                return 0
            self.scanner.scan_all()
            if not self.once:
                self.watcher = watcher.Watcher(self.cfg.inboxes, self.library, self._record, self.scanner.request,
                                               self.retries.closed, create=creates_inbox(self.cfg))
                self.watcher.start()
                self.scanner.scan_all()  # closes the gap between the first scan and the watch
                self._start_notices()
                self.systemd.ready(self.tick(force=True))
            self.loop()
        finally:
            self.shutdown()
        return 0

    def _make_library(self) -> None:
        # The library and its star folders are made here, unless the library
        # is on a disk that is not mounted: creating it would fill the disk
        # below the mount point. Filing waits (and retries) until it is there.
        if not self.library.is_dir() and paths.below_absent_mount(self.library):
            log.error("library %s is below a mount point that is not there: is the disk mounted?"
                      " Filing waits for it", self.library)
            return
        for d in [*[star_folder(s) for s in range(1, 6)], QUARANTINE]:
            try:
                (self.library / d).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                # An unmounted or read-only library is not a reason to stop
                # watching: filing retries until it is back.
                log.error("cannot create %s: %s", self.library / d, e)

    def _pool(self) -> Pool:
        if self.cluster is not None:
            from ..cluster.pool import DaskPool, parse_path_map
            s = self.cfg.sort
            pool = DaskPool(self.cfg.model_dump_json(), self.cluster, parse_path_map(s.path_map),
                            max_in_flight=s.max_in_flight,
                            double=crashpoints.cluster_double())
            log.info("analysing on the Dask cluster at %s%s", self.cluster,
                     f" (dashboard: {pool.dashboard})" if pool.dashboard else "")
            return pool
        if self.review_only:
            return Pool(self.cfg.model_dump_json(), 1, self.cfg.analysis.timeout_seconds,
                        stages=pipeline.PREVIEW_WORKER_STAGES)
        return Pool(self.cfg.model_dump_json(), self.cfg.workers, self.cfg.analysis.timeout_seconds,
                    stages=pipeline.WORKER_STAGES, serve=crashpoints.test_analyser())

    def _start_page(self) -> None:
        self.library_watch = LibraryWatch(self.library)
        self.library_watch.start()
        if not self.cfg.review.enabled:
            return
        from ..web.app import Backend
        from ..web.server import Server
        backend = Backend(database=self.cfg.database, config=lambda: self.cfg, submit=self.requests.submit,
                          notices=self.requests.notices,
                          status_extra=lambda: {"settings": self.settings_in_force})
        try:
            self.web = Server(backend, self.cfg.review.port).start()
        except OSError as e:
            # The page is a convenience; photos keep being filed without it.
            self.lib.event("ERROR", f"the review page is off: {e} (set review.port to a free port, or 0)")
            return
        port = self.web.port
        self.lib.call(lambda db: runs.review_port(db, port))
        if self.on_page is not None:
            self.on_page(port)

    def take_requests(self) -> None:
        """The photographer's moves in the library, once it is quiet, then every request in order."""
        if self.library_watch is not None:
            for src, dst in self.library_watch.settled():
                self.requests.submit({"action": "moved", "src": src, "dst": dst})
        self.requests.run(self.lib, self._rerate, self._stop)

    def _rerate(self, threshold: float | None) -> dict:
        """Re-rate every filed photo the photographer has not decided, at `threshold` if given
        (then kept in force over config.yaml, new photos included)."""
        if threshold is not None and threshold != self.cfg.blur.threshold:
            now = time.time()
            self.lib.call(lambda db: settings.put(db, self.cfg_file, "blur.threshold", threshold, now))
            self.cfg, self.settings_in_force = self.lib.call(lambda db: settings.in_force(db, self.cfg_file))
            self.lib.cfg = self.cfg
            self.scanner.cfg = self.cfg
            log.info("blur.threshold is now %g (set from the review page)", threshold)
            # The workers rate new photos: they start again with the threshold in force.
            self.pool.close()
            self.pool = self._pool()
        return rerate.apply(self.lib, self.cfg)

    def _start_notices(self) -> None:
        n = self.cfg.notifications
        if not n.enabled:
            return
        desktop = Desktop()
        if not desktop.available:
            log.info("desktop notifications: off (no desktop session bus%s)",
                     "" if desktop.tool else ", and desktop-notifier is not installed")
            return
        self.notices = Notices(n.min_interval_seconds, desktop.show,
                               drained_summary=lambda since: self.lib.call(lambda db: health.finished_since(db, since)))

    def tick(self, force: bool = False) -> str:
        """Every TICK seconds: the service's state for systemd's STATUS= and the notifications."""
        now = time.monotonic()
        if not force and now - self._last_tick < TICK:
            return ""
        self._last_tick = now
        cfg = self.cfg
        brief = self.lib.call(lambda db: health.brief(db, cfg))
        self.systemd.status(brief["line"])
        if self.notices is not None:
            self.notices.see(brief)
        return brief["line"]

    def shutdown(self) -> None:
        crashpoints.hit("shutdown")
        self.systemd.stopping()
        if self.web:
            self.web.stop()
        if self.library_watch:
            self.library_watch.stop()
        if self.watcher:
            self.watcher.stop()
        if self.pool:
            self.pool.close()
        if self.writer and self.writer.is_alive():
            now = time.time()
            self.writer.call(lambda db: runs.stopped(db, now))
            self.writer.close()
        log.info("stopped")
        self.systemd.close()
        if self._deadline is not None:
            self._deadline.cancel()     # in process (`sort`, tests), life goes on after a stop
            self._deadline.join()

    def _record(self, path: str) -> None:
        # From a watchdog thread: hand the path to the writer and return.
        self.writer.submit(lambda db: settle.record(db, path))

    # ---- the loop ---------------------------------------------------------------

    def loop(self) -> None:
        # Two moments of start-up: intake is ready now (inboxes scanned and
        # watched, new files are recorded and queued); analysis is ready once
        # the workers have imported torch and warmed MTCNN up, seconds later.
        if self.review_only:
            self._review_loop()
            return
        log.info("watching %d inbox(es); analysis workers starting", len(self.cfg.inboxes))
        announced = False
        while not self._stop.is_set():
            if self.pool.fatal:
                raise RuntimeError(self.pool.fatal)
            if not announced and self.pool.ready() == self.cfg.workers:
                log.info("ready: %d analysis worker(s)", self.cfg.workers)
                announced = True
            paused = self._check_pause()
            self.scanner.scan_requested()
            if not self.once and self.scanner.due():
                self.scanner.scan_all()
                if not paused:
                    outcomes.relook_quarantined(self.lib)
                self.retries.forget_closed()
                if self.watcher:
                    self.watcher.check()
            # Paused: the watcher and the scans go on recording new files (in
            # the inbox table), but none becomes a photo, is analysed or moves.
            waiting = self.settle() if not paused else 0
            if not paused:
                self.dispatch()
            # Workers being stopped: a photo they were analysing stays queued.
            self.handle_all([a for a in self.pool.poll(0.2)
                             if not (self._stop.is_set() and a.status in (Status.CRASHED, Status.TIMEOUT))])
            self.take_requests()
            if not paused:
                self.group_people()
            if not self.once and not paused:
                self.backfill_previews()
                self.backfill_embeddings()
            self.heartbeat()
            if not self.once:
                self.tick()
            if self.once and waiting == 0 and self._idle():
                self._people_at = 0.0
                self.group_people()
                log.info("inboxes processed; exiting (--once)")
                return

    def _review_loop(self) -> None:
        """`starsort review` with the service stopped: the photographer's requests, and previews."""
        log.info("serving the review page on its own; the inboxes are not watched")
        while not self._stop.is_set():
            for answer in self.pool.poll(0.2):
                self.handle(answer)
            self.take_requests()
            self.backfill_previews()
            self.heartbeat()

    def group_people(self) -> None:
        """After a batch (the workers idle) and at most every PEOPLE_EVERY seconds: the faces
        embedded since the last time join named people or suggested groups."""
        if (not self._people_due or not self.cfg.people.enabled or self.pool.busy()
                or time.monotonic() - self._people_at < PEOPLE_EVERY):
            return
        self._people_due = False
        self._people_at = time.monotonic()
        try:
            _, self._people_seen = people.group_new(self.lib, self._people_seen)
        except Exception:  # noqa: BLE001 - grouping is a convenience; filing goes on
            log.exception("grouping faces into people failed")

    def backfill_embeddings(self) -> None:
        """Faces of photos filed before faces were embedded: one photo at a time, only while the
        workers have nothing else to do (after the previews)."""
        if (self._embeds_backfilled or not self.cfg.people.enabled or self._embeds or self._previews
                or not self._previews_backfilled or self.pool.busy() or not self.pool.slots()
                or crashpoints.test_analyser() is not None):
            return
        if self.lib.call(lambda db: photos.pending(db, None))[0]:
            return
        skip = tuple(self._embed_failed)
        row = self.lib.call(lambda db: people_store.without_vectors(db, skip))
        if row is None:
            self._embeds_backfilled = True
            return
        decision = dispatch.choose(row["current_path"], row["pair_path"])
        if isinstance(decision, dispatch.Submit) and self.pool.submit(row["id"], decision.path, decision.kind,
                                                                      embed_faces=row["faces"]):
            self._embeds.add(row["id"])
        else:
            self._embed_failed.add(row["id"])

    def backfill_previews(self) -> None:
        """Previews for photos analysed before there were any: one at a time, only while the
        workers have nothing else to do, so new photos never wait behind old ones."""
        if (self._previews_backfilled or not self.cfg.review.enabled or self._previews
                or self.pool.busy() or not self.pool.slots() or crashpoints.test_analyser() is not None):
            return
        if not self.review_only and self.lib.call(lambda db: photos.pending(db, None))[0]:
            return
        row = self.lib.call(photos.without_preview)
        if row is None:
            self._previews_backfilled = True
            return
        decision = dispatch.choose(row["current_path"], row["pair_path"])
        if isinstance(decision, dispatch.Submit) and self.pool.submit(row["id"], decision.path, decision.kind,
                                                                      preview_only=True):
            self._previews.add(row["id"])
        else:
            self.lib.call(lambda db: photos.preview_made(db, row["id"], ""))   # nothing to show: not again

    def _idle(self) -> bool:
        if self.pool.busy():
            return False
        count, waiting_files = self.lib.call(lambda db: photos.pending(db, self.scope))
        waiting_files = [p for p in waiting_files if self.only is None or p in self.only]
        return count + len(waiting_files) == 0

    def _check_pause(self) -> bool:
        """Whether intake is paused now (`starsort pause`, the tray, the page); a change is logged."""
        if self.once:
            return False       # `run --once` and `sort` are asked for explicitly: they go ahead
        now = pause.state(self.cfg.database)
        if (now is None) != (self.paused is None):
            if now is not None:
                log.info("intake paused (by %s): new files are recorded, nothing is analysed or filed"
                         " until `starsort resume`", now.get("by"))
            else:
                log.info("intake resumed")
            self.paused = now
            self._last_tick = 0.0     # the tray and systemd hear of it at once
        return now is not None

    def heartbeat(self) -> None:
        self.systemd.alive()
        if time.monotonic() - self._last_heartbeat >= 5:
            self._last_heartbeat = time.monotonic()
            now = time.time()
            self.writer.submit(lambda db: runs.heartbeat(db, now))

    def settle(self) -> int:
        """Settled files become photos; files that follow a filed photo, or cannot, are dealt with now."""
        copy = self.lib.copy

        def step(db) -> tuple[list[dict], int]:
            with transaction(db):
                ready, waiting = settle.check(db, self.cfg.settle_seconds, scope=self.scope)
                if self.only is not None:
                    ready = [r for r in ready if r.path in self.only]
                actions = pairing.admit(db, ready, copy) if ready else []
            return actions, waiting
        actions, waiting = self.lib.call(step)
        for a in actions:
            if self._stop.is_set():
                break
            if a["action"] == "follow":
                outcomes.follow(self.lib, a["photo"], a["path"], a["role"])
            else:
                outcomes.quarantine_file(self.lib, a["path"], a["reason"])
        return waiting

    def dispatch(self) -> None:
        """Hand queued photos to free worker slots; retry filings that are due."""
        if self._stop.is_set() or not self.pool.slots():
            return
        busy = set(self.pool.in_flight())
        rows = self.lib.call(lambda db: photos.to_dispatch(
            db, skip=self.retries.waiting(), limit=len(busy) + self.pool.slots() + 8, scope=self.scope))
        for row in rows:
            if row["id"] in busy:
                continue
            if row["state"] == "analysed":
                # Analysis is stored but filing did not happen (a crash, a stop, a full disk).
                if self.retries.due(row["id"]):
                    pipeline.file_and_rate(self.lib, row["id"])
                continue
            if pipeline.before_analysis(self.lib, row):
                continue
            decision = dispatch.choose(row["original_path"], row["pair_original_path"],
                                       raw_only=self.retries.raw_only(row["id"]))
            match decision:
                case dispatch.Refuse(reason):
                    outcomes.quarantine(self.lib, row["id"], reason)
                case dispatch.Vanished():
                    outcomes.vanished(self.lib, row["id"])
                case dispatch.Unreadable(error):
                    outcomes.unreadable(self.lib, row["id"], error)
                case dispatch.Submit(path, kind):
                    if not row["pair_original_path"] and kind != row["kind"]:
                        self.lib.call(lambda db: photos.set_kind(db, row["id"], kind))
                    if not self.pool.submit(row["id"], path, kind):
                        break

    def handle_all(self, answers: list[Answer]) -> None:
        """The answers of one poll. Analyses that came back together are stored and filed
        together (`pipeline.after_analysis_many`), sharing their commits and fsyncs."""
        analysed = [a for a in answers if a.status is Status.OK
                    and a.photo_id not in self._previews and a.photo_id not in self._embeds]
        together = {id(a) for a in analysed} if len(analysed) > 1 else set()
        for answer in answers:
            if id(answer) not in together:
                self.handle(answer)
        if len(analysed) < 2:
            return
        for answer in analysed:
            self.retries.succeeded(answer.photo_id)
        self.lib.call(lambda db: pipeline.after_analysis_many(self.lib, [(a.photo_id, a.payload) for a in analysed]))
        if any(f.get("embedding") for a in analysed for f in a.payload.get("faces") or []):
            self._people_due = True

    def handle(self, answer: Answer) -> None:
        """One worker answer: a result goes down the pipeline, anything else to the retry policy."""
        if answer.photo_id in self._previews:
            # Only previews were asked for: a failure costs the preview, never the photo.
            self._previews.discard(answer.photo_id)
            key = answer.payload.get("preview") if answer.status is Status.OK else None
            if key is None:
                log.info("no preview for photo %d (%s)", answer.photo_id,
                         answer.status if answer.status is not Status.OK else "not written")
            self.lib.call(lambda db: photos.preview_made(db, answer.photo_id, key or ""))
            return
        if answer.photo_id in self._embeds:
            self._embeds.discard(answer.photo_id)
            vectors = answer.payload.get("vectors") if answer.status is Status.OK else None
            if not vectors:
                self._embed_failed.add(answer.photo_id)
                return
            self.lib.call(lambda db: [people_store.add_vector(db, fid, model, v) for fid, model, v in vectors])
            self._people_due = True
            return
        if answer.status is Status.OK:
            self.retries.succeeded(answer.photo_id)
            # On the writer's thread, whole: its dozen reads and commits are then calls, not
            # round trips between threads (a third of the coordinator's time on a cluster).
            self.lib.call(lambda db: pipeline.after_analysis(self.lib, answer.photo_id, answer.payload))
            if any(f.get("embedding") for f in answer.payload.get("faces") or []):
                self._people_due = True
        else:
            self.retries.failed(answer)
