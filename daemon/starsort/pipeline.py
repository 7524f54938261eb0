"""The order of the stages, written once, in code that runs.

One photo's way from the inbox to its star folder:

  intake/watcher   a file lands; its path is recorded            (watchdog threads)
  intake/settle    ... until its size and mtime hold still
  intake/pairing   it becomes a photo: alone, or a RAW+JPEG pair
  analysis/dispatch  which file to decode, judged by its bytes     (the deciding thread)
  [a worker process]
      DECODE_AHEAD   decode -> exif -> phash                       (a thread, one photo ahead)
      DETECT         faces -> blur -> rate                          (torch)
  [the deciding thread, the one writer]
      after_analysis store -> bursts -> file -> ratings

The worker runs the analysis stages in a child process, so a decoder crash
costs one photo, not the service; `bursts` runs in the service because it is
incremental and order-dependent (one writer); filing and ratings run there
because they own the move journal. The worker, the service, the benchmarks
and the tests all take the order from here.

Adding an analysis stage: its module in `analysis/` with `run(job, ctx)`
(and `prepare(ctx)` if it loads a model), its name in one tuple below, a migration for
what it stores, and its columns in `store/results.py`.
"""
from __future__ import annotations

import logging

from sqlite_utils import Database

from .analysis import blur, decode, exif, faces, phash, rate
from .analysis.job import Context, Job, Stage
from .library import bursts, outcomes, ratings, recovery
from .library.context import Library
from .store import results
from .store.db import transaction

__all__ = ["ANALYSIS", "Context", "DECODE_AHEAD", "DETECT", "after_analysis", "analyse", "decode",
           "file_and_rate", "record", "recover", "WORKER_STAGES"]

log = logging.getLogger("starsort.pipeline")

# In the worker, one photo ahead of the detector: these release the GIL
# (libjpeg, LibRaw, OpenCV), so they overlap with torch on the other core.
DECODE_AHEAD: tuple[Stage, ...] = (decode, exif, phash)
# In the worker, after DECODE_AHEAD: MTCNN, then what is judged from its faces.
DETECT: tuple[Stage, ...] = (faces, blur, rate)
ANALYSIS: tuple[Stage, ...] = DECODE_AHEAD + DETECT
# What a worker process is started with (analysis.worker.Pool's `stages`).
WORKER_STAGES = (tuple(s.__name__ for s in DECODE_AHEAD), tuple(s.__name__ for s in DETECT))


def analyse(job: Job, ctx: Context) -> Job:
    """Every analysis stage in order, in this process (tests, benchmarks)."""
    for stage in ANALYSIS:
        stage.run(job, ctx)
    return job


def after_analysis(lib: Library, photo_id: int, result: dict) -> None:
    """store -> bursts -> file -> ratings, for one analysed photo."""
    record(lib, photo_id, result)
    file_and_rate(lib, photo_id)


def record(lib: Library, photo_id: int, result: dict) -> None:
    """store -> bursts, in one transaction: a crash never leaves a stored result outside its burst."""
    def write(db: Database) -> None:
        with transaction(db):
            results.store(db, photo_id, result)
            bursts.assign(db, photo_id, lib.cfg.cluster)
    lib.call(write)
    faces_ = result.get("faces") or []
    log.info("photo %d: %s stars (%s; %d face(s), %d blurry) in %.2fs", photo_id, result["stars"],
             result["rated_on"], len(faces_), sum(1 for f in faces_ if f["blurry"]), result.get("seconds", 0))


def file_and_rate(lib: Library, photo_id: int) -> None:
    """file -> ratings: the steps after a stored analysis, also taken by a retried filing."""
    if outcomes.file(lib, photo_id) == "done":
        ratings.write(lib, photo_id)


def recover(lib: Library) -> None:
    """Start-up: finish the filings a crash interrupted, then rate those that reached a star folder."""
    for photo_id in recovery.recover(lib):
        ratings.write(lib, photo_id)
