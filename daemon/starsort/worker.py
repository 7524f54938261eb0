"""Analysis worker processes.

Decoders are C code fed untrusted files (LibRaw has crashed on corrupt raws,
LibRaw #409), so analysis runs in child processes: a segfault or an OOM kill
costs the photo in hand, not the service. Each worker imports torch and loads
MTCNN once, at start, then analyses photos one at a time for as long as it
lives. One pipe per worker (rather than a ProcessPoolExecutor) lets the
service know exactly which photo a dead worker was holding, and kill just the
worker whose photo overran `analysis.timeout_seconds`.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)


def _serve(conn: Connection, config_json: str, torch_threads: int) -> None:
    """Worker main: load models once, then answer (photo_id, path, kind) requests."""
    # Imports live here so the service process never loads torch.
    import signal

    # The service handles SIGTERM/SIGINT and stops workers itself; a worker
    # killed by the terminal's ^C mid-photo would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from .config import Config
    from .job import BadInput, Job
    from .pipeline import Context, analyse
    from . import faces

    import torch
    torch.set_num_threads(max(1, torch_threads))
    cfg = Config.model_validate_json(config_json)
    ctx = Context(config=cfg)
    try:
        ctx.models["mtcnn"] = faces.load_detector(cfg.faces)
        conn.send(("ready", None))
    except Exception as e:  # noqa: BLE001 - reported to the service, which stops
        conn.send(("fatal", f"cannot load the face detector: {e}"))
        return
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
            job = analyse(Job(photo_id=photo_id, path=path, kind=kind), ctx)
            res: dict[str, Any] = job.result()
            res["seconds"] = round(time.perf_counter() - t0, 3)
            conn.send(("ok", res))
        except BadInput as e:
            conn.send(("bad", str(e)))
        except FileNotFoundError as e:
            conn.send(("vanished", str(e)))
        except MemoryError:
            conn.send(("bad", "image too large to analyse (out of memory)"))
        except Exception as e:  # noqa: BLE001 - a bug or infrastructure: the service decides
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))


@dataclass
class Task:
    photo_id: int
    path: str
    kind: str
    started: float


class Worker:
    def __init__(self, ctx: mp.context.BaseContext, config_json: str, torch_threads: int, serve=None):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve or _serve, args=(child, config_json, torch_threads),
                                name="starsort-worker", daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.task: Task | None = None

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class Pool:
    """A fixed number of workers; `poll()` returns finished results and crash reports."""

    def __init__(self, config_json: str, size: int, timeout: float, serve=None):
        # `serve` replaces the worker's main function; tests inject crashing doubles.
        self._serve = serve
        self._ctx = mp.get_context("spawn")  # fork + torch's threads can deadlock
        self.config_json = config_json
        self.size = size
        self.timeout = timeout
        cores = os.cpu_count() or 1
        self.torch_threads = max(1, cores // size)
        self.workers = [self._spawn() for _ in range(size)]
        self.fatal: str | None = None

    def _spawn(self) -> Worker:
        return Worker(self._ctx, self.config_json, self.torch_threads, self._serve)

    def idle(self) -> int:
        return sum(1 for w in self.workers if w.ready and w.task is None)

    def busy(self) -> int:
        return sum(1 for w in self.workers if w.task is not None)

    def submit(self, photo_id: int, path: str, kind: str) -> bool:
        for w in self.workers:
            if w.ready and w.task is None:
                w.task = Task(photo_id, path, kind, time.monotonic())
                w.conn.send((photo_id, path, kind))
                return True
        return False

    def in_flight(self) -> list[int]:
        return [w.task.photo_id for w in self.workers if w.task is not None]

    def poll(self, timeout: float = 0.2) -> list[tuple[int, str, Any]]:
        """Wait up to `timeout` for results: [(photo_id, status, payload)].

        status: ok | bad | vanished | error | crashed | timeout
        """
        out: list[tuple[int, str, Any]] = []
        conns = {w.conn: w for w in self.workers}
        sentinels = {w.proc.sentinel: w for w in self.workers}
        ready = wait(list(conns) + list(sentinels), timeout)
        for r in ready:
            w = conns.get(r) or sentinels.get(r)
            if w is None or w not in self.workers:
                continue
            if r is w.conn or w.proc.is_alive():
                try:
                    while w.conn.poll():
                        status, payload = w.conn.recv()
                        if status == "ready":
                            w.ready = True
                        elif status == "fatal":
                            self.fatal = payload
                        elif w.task is not None:
                            out.append((w.task.photo_id, status, payload))
                            w.task = None
                except (EOFError, OSError):
                    pass
            if not w.proc.is_alive():
                self._replace(w, out, "crashed",
                              f"the decoder crashed (worker exit code {w.proc.exitcode})")
        now = time.monotonic()
        for w in list(self.workers):
            if w.task is not None and now - w.task.started > self.timeout:
                w.proc.kill()
                self._replace(w, out, "timeout", f"analysis took longer than {self.timeout:.0f}s")
        return out

    def _replace(self, w: Worker, out: list, status: str, why: str) -> None:
        if w.task is not None:
            out.append((w.task.photo_id, status, why))
            w.task = None
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
        for w in self.workers:
            try:
                if w.task is None and w.proc.is_alive():
                    w.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 3
        for w in self.workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            w.kill()
