"""The worker pool: a decoder crash or hang costs one photo, and the pool carries on."""
from __future__ import annotations

import time

from starsort.analysis.worker import Pool

from .worker_doubles import crashing_serve, decode_ahead_serve


def _drain(pool: Pool, n: int, timeout: float = 60) -> list:
    out: list = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        out += pool.poll(0.2)
    return out


def test_a_worker_that_crashes_reports_that_photo_and_is_replaced():
    pool = Pool("{}", 1, timeout=30, serve=crashing_serve)
    try:
        pool.wait_ready(60)
        assert pool.submit(1, "/in/crash.ARW", "raw")
        [(photo, status, why)] = _drain(pool, 1)
        assert (photo, status) == (1, "crashed") and "crashed" in why
        pool.wait_ready(60)
        assert pool.submit(2, "/in/fine.JPG", "jpeg")
        assert _drain(pool, 1) == [(2, "ok", {"photo_id": 2, "path": "/in/fine.JPG"})]
    finally:
        pool.close()


def test_a_photo_that_overruns_the_timeout_is_reported_and_its_worker_killed():
    pool = Pool("{}", 2, timeout=1.0, serve=crashing_serve)
    try:
        pool.wait_ready(60)
        pool.submit(1, "/in/hang.JPG", "jpeg")
        pool.submit(2, "/in/ok.JPG", "jpeg")
        results = {p: s for p, s, _ in _drain(pool, 2)}
        assert results == {1: "timeout", 2: "ok"}
        pool.wait_ready(60)
        assert pool.idle() == 2
    finally:
        pool.close()


def test_a_crash_while_decoding_the_next_photo_is_charged_to_that_photo_only():
    pool = Pool("{}", 1, timeout=30, serve=decode_ahead_serve)
    try:
        pool.wait_ready(60)
        assert pool.submit(1, "/in/fine.JPG", "jpeg")
        assert pool.submit(2, "/in/crash.ARW", "raw")
        # Photo 1 was being analysed when photo 2's decode crashed: it is not
        # charged, and goes back to the queue (no longer in flight).
        assert _drain(pool, 1) == [(2, "crashed", "the decoder crashed (worker exit code -6)")]
        assert pool.in_flight() == []
    finally:
        pool.close()
