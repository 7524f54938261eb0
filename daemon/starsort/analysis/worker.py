"""Analysis worker processes.

Decoders are C code fed untrusted files (LibRaw has crashed on corrupt raws,
LibRaw #409), so analysis runs in child processes: a segfault or an OOM kill
costs the photo in hand, not the service. Each worker imports torch and loads
MTCNN once, at start, then analyses photos for as long as it lives. One
pipe per worker (rather than a ProcessPoolExecutor) lets the service know exactly which photo a dead worker was holding, and kill just the
worker whose photo overran `analysis.timeout_seconds`.

Each worker is sent up to DEPTH requests: the next one waits in the pipe
while the service stores and files the previous result, so the worker goes
straight on to it instead of idling for the service's round trip (filing a
24 MP photo, the database, the next poll). And while MTCNN works on one photo
(torch's threads), a second thread in the worker decodes the next one (the
pipeline's DECODE_AHEAD stages; Pillow's decoders, rawpy (rawpy #220) and OpenCV
release the GIL), so the single-threaded decode no longer leaves a core
idle: about 10 % more photos a second on 2 cores.

A worker answers in order. It says which photo it is decoding ("decoding",
then "decoded"), so a crash is charged to the photo whose decode was running
(decoders are what crash on bad files), else to the oldest photo it holds,
the one being analysed; a timeout is charged to the oldest. The others go
back to the queue without a charge.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from .job import Answer, BadInput, Context, Face, Job, Stage, Status

log = logging.getLogger(__name__)

DEPTH = 2


def _serve(conn: Connection, config_json: str, torch_threads: int,
           decode_ahead_names: tuple[str, ...], detect_names: tuple[str, ...],
           preview_names: tuple[str, ...] = ()) -> None:
    """Worker main: prepare every stage once, then answer (photo_id, path, kind[, "preview"]) requests.

    The stages are named modules; `decode_ahead` runs in a thread, one photo
    ahead of `detect`. The pipeline says which stages go where. A request
    marked "preview" (a photo analysed before previews existed) runs only
    `preview_names`; a worker started with no `detect` stages (the review
    page on its own) never loads torch.
    """
    # Imports live here so the service process never loads torch.
    import signal

    # The service handles SIGTERM/SIGINT and stops workers itself; a worker
    # killed by the terminal's ^C mid-photo would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    from ..config import Config

    if detect_names:
        import torch
        torch.set_num_threads(max(1, torch_threads))
    decode_ahead: tuple[Stage, ...] = tuple(importlib.import_module(n) for n in decode_ahead_names)
    detect: tuple[Stage, ...] = tuple(importlib.import_module(n) for n in detect_names)
    preview_only: tuple[Stage, ...] = tuple(importlib.import_module(n) for n in preview_names)
    cfg = Config.model_validate_json(config_json)
    ctx = Context(config=cfg)
    t1 = time.perf_counter()
    try:
        for stage in dict.fromkeys((*decode_ahead, *detect, *preview_only)):
            prepare = getattr(stage, "prepare", None)
            if prepare is not None:
                prepare(ctx)
        conn.send(("ready", {"imports": round(t1 - t0, 3), "model": round(time.perf_counter() - t1, 3)}))
    except Exception as e:  # noqa: BLE001 - reported to the service, which stops
        conn.send(("fatal", str(e)))
        return

    ahead = ThreadPoolExecutor(1, thread_name_prefix="starsort-decode")
    send_lock = threading.Lock()

    def send(msg: tuple) -> None:
        with send_lock:
            conn.send(msg)

    # A photo analysed before faces were embedded: decoded again, its stored faces embedded.
    decode_stage = next((s for s in decode_ahead if s.__name__.endswith(".decode")), None)
    embed_stage = next((s for s in detect if s.__name__.endswith(".embed")), None)

    def start(req: tuple) -> Any:
        photo_id, path, kind, *mode = req
        job = Job(photo_id=photo_id, path=path, kind=kind)
        job.preview_only = mode == ["preview"]
        embed_faces = mode[1] if mode and mode[0] == "embed" else None

        def run_early() -> tuple[Job, float]:
            t = time.perf_counter()
            send(("decoding", photo_id))
            try:
                if embed_faces is not None:
                    job.embed_only = embed_faces
                    stages = (decode_stage,) if decode_stage is not None else ()
                else:
                    stages = preview_only if job.preview_only else decode_ahead
                for stage in stages:
                    stage.run(job, ctx)
            finally:
                send(("decoded", photo_id))
            return job, t
        return ahead.submit(run_early)

    def receive() -> tuple | None:
        try:
            return conn.recv()
        except EOFError:
            return None

    req = receive()
    future = start(req) if req is not None else None
    while future is not None:
        nxt = None
        try:
            job, t_start = future.result()
            # This photo's decode is done: decode the next one, if it is
            # already waiting, while this one goes through MTCNN.
            if conn.poll():
                req = receive()
                nxt = start(req) if req is not None else None
            if job.preview_only:
                send((Status.OK, {"photo_id": job.photo_id, "preview": job.preview, "preview_only": True}))
            elif getattr(job, "embed_only", None) is not None:
                job.faces = [Face(box=(0.0, 0.0, 0.0, 0.0), landmarks=[tuple(p) for p in lm], probability=1.0)
                             for _, lm in job.embed_only]
                if embed_stage is not None:
                    embed_stage.run(job, ctx)
                send((Status.OK, {"photo_id": job.photo_id, "embed_only": True, "vectors": [
                    (fid, f.embedded_by, f.as_dict()["embedding"])
                    for (fid, _), f in zip(job.embed_only, job.faces) if f.embedding is not None]}))
            else:
                for stage in detect:
                    stage.run(job, ctx)
                res: dict[str, Any] = job.result()
                res["seconds"] = round(time.perf_counter() - t_start, 3)
                send((Status.OK, res))
        except BadInput as e:
            send((Status.BAD, str(e)))
        except FileNotFoundError as e:
            send((Status.VANISHED, str(e)))
        except MemoryError:
            send((Status.BAD, "image too large to analyse (out of memory)"))
        except Exception as e:  # noqa: BLE001 - a bug or infrastructure: the service decides
            send((Status.ERROR, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))
        if nxt is None and req is not None:
            req = receive()
            nxt = start(req) if req is not None else None
        future = nxt
    ahead.shutdown(wait=True)


@dataclass
class Task:
    photo_id: int
    path: str
    kind: str
    started: float | None  # when the worker began on it: None while it waits behind another


class Worker:
    def __init__(self, ctx: mp.context.BaseContext, config_json: str, torch_threads: int,
                 stages: tuple[tuple[str, ...], ...], serve=None):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve or _serve, args=(child, config_json, torch_threads, *stages),
                                name="starsort-worker", daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.started = time.monotonic()
        self.tasks: list[Task] = []  # oldest first: tasks[0] is the photo being analysed
        self.decoding: int | None = None  # the photo whose decode is running, if any

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class Pool:
    """A fixed number of workers; `poll()` returns finished results and crash reports."""

    def __init__(self, config_json: str, size: int, timeout: float,
                 stages: tuple[tuple[str, ...], ...] = ((), ()), serve=None):
        # `stages` names the (decode-ahead, detect, preview-only) stage modules, from the pipeline. `serve`
        # replaces the worker's main function; tests inject crashing doubles.
        self._serve = serve
        self.stages = stages
        self._ctx = mp.get_context("spawn")  # fork + torch's threads can deadlock
        self.config_json = config_json
        self.size = size
        self.timeout = timeout
        cores = os.cpu_count() or 1
        # Each worker's decode-ahead thread keeps a core busy, so torch gets
        # the rest: OpenMP threads that share a core with it wait on each
        # other at every layer. On the 2-core build machine, one worker filed
        # 3.5 photos/s with 2 torch threads and 5.3 with 1.
        self.torch_threads = max(1, cores // size - 1)
        self.workers = [self._spawn() for _ in range(size)]
        self.fatal: str | None = None

    def _spawn(self) -> Worker:
        return Worker(self._ctx, self.config_json, self.torch_threads, self.stages, self._serve)

    def ready(self) -> int:
        """Workers that have loaded their model."""
        return sum(1 for w in self.workers if w.ready)

    def idle(self) -> int:
        """Ready workers holding no photo."""
        return sum(1 for w in self.workers if w.ready and not w.tasks)

    def slots(self) -> int:
        """How many more photos the ready workers accept now (DEPTH each)."""
        return sum(DEPTH - len(w.tasks) for w in self.workers if w.ready)

    def busy(self) -> int:
        return sum(1 for w in self.workers if w.tasks)

    def submit(self, photo_id: int, path: str, kind: str, preview_only: bool = False,
               embed_faces: list | None = None) -> bool:
        # The least loaded worker: an idle one starts at once.
        free = [w for w in self.workers if w.ready and len(w.tasks) < DEPTH]
        if not free:
            return False
        w = min(free, key=lambda w: len(w.tasks))
        w.tasks.append(Task(photo_id, path, kind, None if w.tasks else time.monotonic()))
        if embed_faces is not None:
            w.conn.send((photo_id, path, kind, "embed", embed_faces))
        else:
            w.conn.send((photo_id, path, kind, "preview") if preview_only else (photo_id, path, kind))
        return True

    def in_flight(self) -> list[int]:
        return [t.photo_id for w in self.workers for t in w.tasks]

    def poll(self, timeout: float = 0.2) -> list[Answer]:
        """Wait up to `timeout` for results: one Answer per photo a worker finished or died on."""
        out: list[Answer] = []
        conns = {w.conn: w for w in self.workers}
        sentinels = {w.proc.sentinel: w for w in self.workers}
        ready = wait(list(conns) + list(sentinels), timeout)
        for r in ready:
            w = conns.get(r) or sentinels.get(r)
            if w is None or w not in self.workers:
                continue
            # Read what a dead worker sent before it died too: its last
            # "decoding" says which photo to charge with the crash.
            try:
                while w.conn.poll():
                    status, payload = w.conn.recv()
                    if status == "decoding":
                        w.decoding = payload
                    elif status == "decoded":
                        if w.decoding == payload:
                            w.decoding = None
                    elif status == "ready":
                        w.ready = True
                        if isinstance(payload, dict):
                            log.info("analysis worker ready %.1fs after spawn (imports %.1fs, model %.2fs)",
                                     time.monotonic() - w.started, payload.get("imports", 0),
                                     payload.get("model", 0))
                    elif status == "fatal":
                        self.fatal = payload
                    elif w.tasks:
                        out.append(Answer(w.tasks.pop(0).photo_id, Status(status), payload))
                        if w.tasks:
                            w.tasks[0].started = time.monotonic()
            except (EOFError, OSError):
                pass
            if not w.proc.is_alive():
                self._replace(w, out, Status.CRASHED,
                              f"the decoder crashed (worker exit code {w.proc.exitcode})", blame=w.decoding)
        now = time.monotonic()
        for w in list(self.workers):
            head = w.tasks[0] if w.tasks else None
            if head is not None and head.started is not None and now - head.started > self.timeout:
                w.proc.kill()
                self._replace(w, out, Status.TIMEOUT, f"analysis took longer than {self.timeout:.0f}s")
        return out

    def _replace(self, w: Worker, out: list[Answer], status: Status, why: str, blame: int | None = None) -> None:
        if w.tasks:
            # One photo is charged: the one being decoded when given, else
            # the oldest (being analysed). The rest stay queued, uncharged.
            ids = [t.photo_id for t in w.tasks]
            out.append(Answer(blame if blame in ids else ids[0], status, why))
            w.tasks = []
        w.kill()
        i = self.workers.index(w)
        if self.fatal is None:
            self.workers[i] = self._spawn()

    def wait_ready(self, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while not all(w.ready for w in self.workers):
            if self.fatal:
                raise RuntimeError(self.fatal)
            if time.monotonic() > end:
                raise RuntimeError("analysis workers did not start in time")
            self.poll(0.5)

    def close(self) -> None:
        # A worker only reads: it holds nothing that a kill could lose, and a
        # photo it was analysing stays queued for the next start. A polite
        # exit would cost a second of torch's teardown per worker.
        for w in self.workers:
            w.kill()
