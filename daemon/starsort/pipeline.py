"""The order of the stages, written once, in code that runs.

One photo's way from the inbox to its star folder:

  intake/watcher   a file lands; its path is recorded            (watchdog threads)
  intake/settle    ... until its size and mtime hold still
  intake/pairing   it becomes a photo: alone, or a RAW+JPEG pair
  before_analysis    a copy of a photo already filed stops here   (the deciding thread)
  analysis/dispatch  which file to decode, judged by its bytes
  [a worker process]
      DECODE_AHEAD   decode -> exif -> phash -> signature -> preview (a thread, one photo ahead)
      DETECT         faces -> blur -> embed -> rate                 (torch, then OpenCV's dnn)
  [the deciding thread, the one writer]
      after_analysis store -> bursts -> file -> ratings   (after_analysis_many: several, sharing fsyncs)

The worker runs the analysis stages in a child process, so a decoder crash
costs one photo, not the service; `bursts` runs in the service because it is
incremental and order-dependent (one writer); filing and ratings run there
because they own the move journal. The worker, the service, the benchmarks
and the tests all take the order from here.

Adding an analysis stage: its module in `analysis/` with `run(job, ctx)`
(and `prepare(ctx)` if it loads a model), its name in `_DECODE_AHEAD` or
`_DETECT` below, a migration for what it stores, and its columns in
`store/results.py`.
"""
from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from sqlite_utils import Database

from .analysis.job import Context, Job, Stage
from .library import bursts, copies, outcomes, overrides, ratings, recovery, xmp
from .library.context import Library
from .library.names import stars_text
from .store import results
from .store.db import transaction

__all__ = ["Context", "WORKER_STAGES", "after_analysis", "after_analysis_many", "analyse", "before_analysis",
           "file_and_rate", "record", "recover"]

log = logging.getLogger("starsort.pipeline")

# The analysis stages, by module name under starsort.analysis, in order.
# In the worker, one photo ahead of the detector: these release the GIL
# (libjpeg, LibRaw, OpenCV), so they overlap with torch on the other core.
_DECODE_AHEAD = ("decode", "exif", "phash", "signature", "preview")
# In the worker, after those: MTCNN, then what is judged from its faces.
_DETECT = ("faces", "blur", "embed", "rate")
# For a photo analysed before the review page had previews: only these.
_PREVIEW_ONLY = ("decode", "preview")
# What a worker process is started with (analysis.worker.Pool's `stages`).
# By name, so the service never imports a decoder: only workers hold
# libjpeg, LibRaw and OpenCV, and only workers read untrusted pixels.
WORKER_STAGES = (tuple(f"{__package__}.analysis.{n}" for n in _DECODE_AHEAD),
                 tuple(f"{__package__}.analysis.{n}" for n in _DETECT),
                 tuple(f"{__package__}.analysis.{n}" for n in _PREVIEW_ONLY))
# The review page on its own (`starsort review`, the service stopped): a
# worker that only makes previews, and never loads torch.
PREVIEW_WORKER_STAGES = ((), (), WORKER_STAGES[2])


def _stages(names: tuple[str, ...]) -> tuple[Stage, ...]:
    return tuple(importlib.import_module(n) for n in names)


def __getattr__(name: str) -> Any:
    """DECODE_AHEAD, DETECT and ANALYSIS (the stage modules, in order), and each stage
    module by its name, imported when first asked for (tests, benchmarks, workers)."""
    if name == "DECODE_AHEAD":
        return _stages(WORKER_STAGES[0])
    if name == "DETECT":
        return _stages(WORKER_STAGES[1])
    if name == "ANALYSIS":
        return _stages(WORKER_STAGES[0] + WORKER_STAGES[1])
    if name in _DECODE_AHEAD + _DETECT:
        module: ModuleType = importlib.import_module(f"{__package__}.analysis.{name}")
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def analyse(job: Job, ctx: Context) -> Job:
    """Every analysis stage in order, in this process (tests, benchmarks)."""
    for stage in __getattr__("ANALYSIS"):
        stage.run(job, ctx)
    return job


def before_analysis(lib: Library, row: dict) -> bool:
    """True when a queued photo needs no analysis: its bytes are already filed
    (a card imported again), so it is set aside as a duplicate."""
    if (of := copies.already_filed(lib, row)) is None:
        return False
    outcomes.duplicate(lib, row["id"], of)
    return True


def after_analysis(lib: Library, photo_id: int, result: dict) -> None:
    """store -> bursts -> file -> ratings, for one analysed photo."""
    record(lib, photo_id, result)
    file_and_rate(lib, photo_id)


def after_analysis_many(lib: Library, answers: list[tuple[int, dict]]) -> None:
    """store -> bursts -> file -> ratings, for photos whose analyses came back together.

    The same steps in the same order, with their commits and fsyncs shared: one
    transaction stores them all and groups them into bursts, in the order they came;
    the filings share their durable steps (`outcomes.file_many`); the sidecars' folders
    are synced once each. A cluster answers many photos at a time; one by one, the
    coordinator spent most of each photo waiting on the disk.
    """
    if len(answers) == 1:
        after_analysis(lib, *answers[0])
        return

    def write(db: Database) -> None:
        with transaction(db):
            for photo_id, result in answers:
                results.store(db, photo_id, result)
                bursts.assign(db, photo_id, lib.cfg.cluster)
    try:
        lib.call(write)
    except Exception:   # noqa: BLE001 - one result the store refuses must not take the others with it
        log.warning("storing %d results together failed; storing them one at a time", len(answers), exc_info=True)
        for photo_id, result in answers:
            after_analysis(lib, photo_id, result)
        return
    for photo_id, result in answers:
        _log_result(photo_id, result)
    states = outcomes.file_many(lib, [photo_id for photo_id, _ in answers])
    with xmp.folder_syncs_shared():
        for photo_id, _ in answers:
            if states.get(photo_id) == "done":
                ratings.write(lib, photo_id)


def record(lib: Library, photo_id: int, result: dict) -> None:
    """store -> bursts, in one transaction: a crash never leaves a stored result outside its burst."""
    def write(db: Database) -> None:
        with transaction(db):
            results.store(db, photo_id, result)
            bursts.assign(db, photo_id, lib.cfg.cluster)
    lib.call(write)
    _log_result(photo_id, result)


def _log_result(photo_id: int, result: dict) -> None:
    faces_ = result.get("faces") or []
    counted = [f for f in faces_ if not f.get("skipped")]
    log.info("photo %d: %s (%s; %d face(s), %d blurry, %d skipped) in %.2fs", photo_id,
             stars_text(result["stars"]), result["rated_on"], len(counted),
             sum(1 for f in counted if f["blurry"]), len(faces_) - len(counted), result.get("seconds", 0))


def file_and_rate(lib: Library, photo_id: int) -> None:
    """file -> ratings: the steps after a stored analysis, also taken by a retried filing."""
    if outcomes.file(lib, photo_id) == "done":
        ratings.write(lib, photo_id)


def recover(lib: Library) -> None:
    """Start-up: finish the filings a crash interrupted, then rate those that reached a star folder;
    take the photographer's moves made while starsort was stopped as their decisions; and put
    any photo whose rating changed but whose move did not happen (a crash between) where it belongs."""
    for photo_id in recovery.recover(lib):
        ratings.write(lib, photo_id)
    for src, dst in overrides.moved_while_stopped(lib):
        overrides.moved_by_hand(lib, src, dst)
    overrides.place_misplaced(lib)
