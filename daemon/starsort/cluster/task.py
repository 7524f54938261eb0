"""What runs on a Dask worker: the analysis of one photo, by the pipeline's own stages.

The models (MTCNN, SFace) are loaded once per worker process, by `Setup` (a Dask worker
plugin), never per task. A photo's path is the coordinator's; `map_path` turns it into the
worker's own (`--path-map /mnt/nas=/Volumes/nas`). A worker that cannot read it says so
with its name and the path it tried, and the coordinator sends the photo to another worker.

The preview stage is left out: previews live on the coordinator's disk, and the running
service makes them for photos that have none, when idle.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

_STATE: dict[str, Any] = {}
_LOCK = threading.Lock()
SKIP = ("preview",)


def map_path(path: str, path_map: list[tuple[str, str]]) -> str:
    """The coordinator's `path` as this worker sees it: the longest matching prefix is replaced."""
    best = None
    for src, dst in path_map:
        s = src.rstrip("/") + "/"
        if (path == src.rstrip("/") or path.startswith(s)) and (best is None or len(s) > len(best[0])):
            best = (s, dst.rstrip("/") + "/")
    if best is None:
        return path
    return best[1] + path[len(best[0]):]


def _stages(double: bool) -> tuple:
    import importlib

    from .. import pipeline
    if double:
        return ()
    names = [n for n in pipeline.WORKER_STAGES[0] + pipeline.WORKER_STAGES[1] if n.rsplit(".", 1)[1] not in SKIP]
    return tuple(importlib.import_module(n) for n in names)


def setup(config_json: str, double: bool) -> None:
    """Load the config and every stage's model, once per worker process."""
    with _LOCK:
        if _STATE.get("config_json") == config_json and _STATE.get("double") == double:
            return
        from ..analysis.job import Context
        from ..config import Config
        ctx = Context(config=Config.model_validate_json(config_json))
        if not double:
            # One torch thread per Dask worker thread: the worker's threads are the parallelism.
            from ..analysis import faces
            ctx.models["mtcnn"] = faces.load_detector(ctx.config.faces, threads=1)
        stages = _stages(double)
        for stage in stages:
            prepare = getattr(stage, "prepare", None)
            if prepare is not None:
                prepare(ctx)
        _STATE.update(config_json=config_json, double=double, ctx=ctx, stages=stages)


def worker_name() -> str:
    try:
        from distributed import get_worker
        w = get_worker()
        return str(w.name) if w.name is not None else w.address
    except (ImportError, ValueError):
        return os.uname().nodename


def analyse(photo_id: int, path: str, kind: str, path_map: list[tuple[str, str]], config_json: str,
            double: float | None = None) -> tuple[str, Any]:
    """One photo: ("ok", result) | ("bad", reason) | ("unreadable", {"worker", "path", "error"})."""
    from ..analysis.job import BadInput, Job
    setup(config_json, double is not None)
    mine = map_path(path, path_map)
    try:
        with open(mine, "rb"):
            pass
    except OSError as e:
        return "unreadable", {"worker": worker_name(), "path": mine, "error": e.strerror or str(e)}
    t0 = time.perf_counter()
    if double is not None:
        # The analysis double of the coordinator's benchmark and the fault tests: reads the
        # file, waits `double` seconds, answers stars derived from its bytes.
        import hashlib
        if "CRASHES-WORKER" in os.path.basename(mine):
            os._exit(3)          # the fault tests' photo that kills whichever worker takes it
        with open(mine, "rb") as f:
            digest = hashlib.sha256(f.read()).digest()
        time.sleep(double)
        return "ok", {"photo_id": photo_id, "original_size": [100, 100], "decode_source": f"double:{mine}",
                      "captured_at": None, "camera_model": None, "phash": digest[:8].hex(), "faces": [],
                      "frame_score": 50.0, "stars": 1 + digest[0] % 5, "rated_on": "frame", "sharpness": 50.0,
                      "seconds": round(time.perf_counter() - t0, 3)}
    job = Job(photo_id=photo_id, path=mine, kind=kind)
    try:
        for stage in _STATE["stages"]:
            stage.run(job, _STATE["ctx"])
    except BadInput as e:
        return "bad", str(e)
    except FileNotFoundError as e:
        return "unreadable", {"worker": worker_name(), "path": mine, "error": str(e)}
    except MemoryError:
        return "bad", "image too large to analyse (out of memory)"
    res = job.result()
    res["seconds"] = round(time.perf_counter() - t0, 3)
    res["worker"] = worker_name()
    return "ok", res


class Setup(WorkerPlugin):
    """The worker plugin that loads the models when a worker joins (and after every restart)."""
    name = "starsort"

    def __init__(self, config_json: str, double: bool):
        self.config_json = config_json
        self.double = double

    def setup(self, worker) -> None:
        setup(self.config_json, self.double)
