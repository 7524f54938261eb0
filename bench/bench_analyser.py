"""An analysis double for bench_service.py (named by STARSORT_TEST_ANALYSER): near-identical frames.

Every photo gets one base pHash with 0-2 bits flipped and a capture time a
tenth of a second after the previous one, as a tripod time-lapse would, so
every frame falls inside one burst window and shares bands with all the
others. It never decodes: the service's own work is what is measured.
"""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone

BASE = 0xAB37E44B9D60944B


def serve(conn, config_json: str, torch_threads: int, *stages) -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    conn.send(("ready", None))
    rng = random.Random(1)
    t0 = time.time()
    n = 0
    while True:
        try:
            req = conn.recv()
        except EOFError:
            return
        if req is None:
            return
        photo_id, path, kind = req
        h = BASE
        for b in rng.sample(range(64), rng.randint(0, 2)):
            h ^= 1 << b
        when = datetime.fromtimestamp(t0 + n * 0.1, timezone.utc).isoformat()
        n += 1
        conn.send(("ok", {
            "photo_id": photo_id, "original_size": [100, 100], "decode_source": "fake",
            "captured_at": when, "camera_model": None, "phash": f"{h:016x}", "faces": [],
            "frame_score": 50.0, "stars": 1 + photo_id % 5, "rated_on": "frame", "sharpness": float(photo_id % 97),
            "seconds": 0.0,
        }))
