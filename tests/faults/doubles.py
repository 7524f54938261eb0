"""A fast analysis worker for fault tests (named by STARSORT_TEST_ANALYSER).

Loading torch and MTCNN takes seconds per worker start; a kill loop restarts
the daemon a hundred times. What these tests check (no photo lost, none
duplicated, groups kept, the database sound) is decided by intake, settle,
the journal and filing, which run unchanged; the analyser only supplies the
star count that picks the destination folder. This one reads the whole file,
as the real decoder would, and derives the stars from its bytes, so a photo's
folder is stable across restarts.

STARSORT_FAKE_DELAY=<seconds> makes each analysis take that long, for tests
that need analysis to fall behind arrivals.
"""
from __future__ import annotations

import hashlib
import os
import time


def serve(conn, config_json: str, torch_threads: int, *stages) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    delay = float(os.environ.get("STARSORT_FAKE_DELAY") or 0)
    conn.send(("ready", None))
    while True:
        try:
            req = conn.recv()
        except EOFError:
            return
        if req is None:
            return
        photo_id, path, kind = req
        t0 = time.perf_counter()
        try:
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).digest()
        except FileNotFoundError as e:
            conn.send(("vanished", str(e)))
            continue
        if delay:
            time.sleep(delay)
        conn.send(("ok", {
            "photo_id": photo_id, "original_size": [100, 100], "decode_source": "fake",
            "captured_at": None, "camera_model": None, "phash": digest[:8].hex(), "faces": [],
            "frame_score": 50.0, "stars": 1 + digest[0] % 5, "rated_on": "frame", "sharpness": 50.0,
            "seconds": round(time.perf_counter() - t0, 3),
        }))
