"""Stand-ins for the analysis worker's main function (they must be importable by spawned children)."""
from __future__ import annotations

import os
import time


def crashing_serve(conn, config_json: str, torch_threads: int, *stages) -> None:
    """Answers like a worker, but dies like a segfaulting decoder on 'crash' and hangs on 'hang'."""
    conn.send(("ready", None))
    while True:
        req = conn.recv()
        if req is None:
            return
        photo_id, path, kind = req
        if "crash" in path:
            os.abort()
        if "hang" in path:
            time.sleep(3600)
        conn.send(("ok", {"photo_id": photo_id, "path": path}))


def decode_ahead_serve(conn, config_json: str, torch_threads: int, *stages) -> None:
    """Like the real worker with two photos in hand: it decodes the second while the first is
    analysed, and that decode dies like a segfaulting decoder on 'crash'."""
    conn.send(("ready", None))
    first = conn.recv()
    second = conn.recv()
    conn.send(("decoding", second[0]))
    if "crash" in second[1]:
        os.abort()
    conn.send(("decoded", second[0]))
    for photo_id, path, _ in (first, second):
        conn.send(("ok", {"photo_id": photo_id, "path": path}))
    while conn.recv() is not None:
        pass
