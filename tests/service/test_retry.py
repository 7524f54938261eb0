"""The retry policy: a file that looks cut short while it is still being written is not judged yet."""
from __future__ import annotations

import os
import time

from starsort.analysis.job import Answer, Status
from starsort.service import retry
from starsort.service.retry import VERDICT_AFTER, Retries
from starsort.store import photos

from ..helpers import copy_fixture


def _queued(lib, path) -> int:
    st = os.stat(path)
    return lib.call(lambda db: photos.queue(db, original=str(path), pair=None, kind="jpeg", size=st.st_size,
                                            mtime_ns=st.st_mtime_ns, now=time.time()))


def test_a_file_written_a_moment_ago_that_looks_truncated_is_looked_at_again_later(make_library, folders):
    lib = make_library(once=False)
    src = copy_fixture("ivan.jpg", folders["inbox"])
    photo_id = _queued(lib, src)
    retries = Retries(lib)

    retries.failed(Answer(photo_id, Status.BAD, "truncated JPEG: no end-of-image marker after the image data"))
    first = lib.retry_at[photo_id] - time.monotonic()
    retries.failed(Answer(photo_id, Status.BAD, "truncated JPEG: no end-of-image marker after the image data"))
    second = lib.retry_at[photo_id] - time.monotonic()

    assert lib.photo(photo_id)["state"] == "queued" and src.exists()
    assert 0 < first <= 2.0 < second <= 4.0        # it waits longer each time


def test_a_file_nothing_has_written_to_for_a_minute_is_quarantined(make_library, folders, monkeypatch):
    lib = make_library(once=False)
    src = copy_fixture("ivan.jpg", folders["inbox"])
    photo_id = _queued(lib, src)
    retries = Retries(lib)
    # A minute later (ctime, which is what is read, cannot be set back).
    monkeypatch.setattr(retry, "_now", lambda: time.time() + VERDICT_AFTER + 5)

    retries.failed(Answer(photo_id, Status.BAD, "truncated JPEG"))

    assert lib.photo(photo_id)["state"] == "quarantined"


def test_a_file_its_writer_closed_and_that_held_still_is_judged_without_waiting_a_minute(make_library, folders):
    lib = make_library(once=False, settle_seconds=0.5)
    src = copy_fixture("ivan.jpg", folders["inbox"])
    photo_id = _queued(lib, src)
    retries = Retries(lib)
    time.sleep(0.6)
    retries.closed(str(src))

    retries.failed(Answer(photo_id, Status.BAD, "truncated JPEG"))

    assert lib.photo(photo_id)["state"] == "quarantined"


def test_run_once_judges_at_once(make_library, folders):
    lib = make_library(once=True)
    src = copy_fixture("ivan.jpg", folders["inbox"])
    photo_id = _queued(lib, src)

    Retries(lib, once=True).failed(Answer(photo_id, Status.BAD, "truncated JPEG"))

    assert lib.photo(photo_id)["state"] == "quarantined"
