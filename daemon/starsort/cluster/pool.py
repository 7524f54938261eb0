"""The coordinator's side: Dask workers behind the local pool's interface.

`DaskPool` answers the service's loop exactly as `analysis.worker.Pool` does (submit,
poll, slots, busy, in_flight, close, fatal), so everything that must stay single stays on
this machine and unchanged: the one SQLite writer, burst grouping, filing and its journal,
XMP. What changes is only where the pixels are looked at.

* Backpressure: at most `max_in_flight` photos are out at once (by default twice the
  workers' threads); the loop asks for more only as answers come back, so a million-file
  folder never becomes a million futures, and results never outrun the writer.
* A worker that dies mid-photo costs nothing: Dask gives the task to another worker. The
  scheduler is told to give up on a task after its second worker death
  (`allowed_failures = 1`); that counts as one crash for the retry policy, as a worker
  crash does in the local pool, so a photo that does it again is quarantined.
* A worker that cannot read a photo (the NAS not mounted there, a wrong path map) says so;
  the photo goes to another worker, and only when none can read it is it reported.
* A lost scheduler sets `fatal`: the loop stops, `sort` says so, and the next `sort`
  resumes (the photos not yet filed are still queued; nothing is filed twice).
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

from ..analysis.job import Answer, Status
from . import task

log = logging.getLogger("starsort.cluster")

# Photos out per worker thread: one being analysed, one waiting, so a worker never idles
# for a round trip.
PER_THREAD = 2


class DaskPool:
    def __init__(self, config_json: str, scheduler: str, path_map: list[tuple[str, str]] | None = None,
                 max_in_flight: int | None = None, double: float | None = None, connect_timeout: float = 20.0):
        from distributed import Client
        self.scheduler = scheduler
        self.config_json = config_json
        self.path_map = list(path_map or [])
        self.double = double
        self.fatal: str | None = None
        try:
            self.client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as e:
            raise RuntimeError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        # A photo that kills two workers is given up on (KilledWorker), then quarantined.
        self.client.run_on_scheduler(_allow_one_failure)
        self.client.register_plugin(task.Setup(config_json, double is not None), name="starsort")
        self._max = max_in_flight
        # future -> (photo_id, path, kind, the workers that could not read it)
        self.futures: dict[Any, tuple[int, str, str, set[str]]] = {}
        # Photos that came back from a KilledWorker, and those of them waiting for their turn:
        # they go out one at a time (see `submit`).
        self._suspects: set[int] = set()
        self._held: list[tuple[int, str, str, set[str] | None]] = []
        self._threads = 0
        self._seen_at = 0.0
        self.dashboard = getattr(self.client, "dashboard_link", None)

    # ---- what the loop asks ----------------------------------------------------------------

    def _workers(self) -> dict[str, Any]:
        """address -> worker info, refreshed at most every second."""
        now = time.monotonic()
        if now - self._seen_at > 1.0:
            try:
                info = self.client.scheduler_info(n_workers=-1)["workers"]
            except TypeError:                      # older distributed: no n_workers argument
                info = self.client.scheduler_info()["workers"]
            except Exception as e:  # noqa: BLE001 - any failure here means the scheduler is gone
                self._lost(e)
                info = {}
            self._info = info
            self._threads = sum(w.get("nthreads", 1) for w in info.values())
            self._seen_at = now
        return self._info

    def workers_in_use(self) -> int:
        return len(self._workers())

    def ready(self) -> int:
        return len(self._workers())

    def slots(self) -> int:
        if self.fatal:
            return 0
        self._workers()
        limit = self._max or max(2, PER_THREAD * self._threads)
        return max(0, limit - self.busy()) if self._threads else 0

    def busy(self) -> int:
        return len(self.futures) + len(self._held)

    def in_flight(self) -> list[int]:
        return [v[0] for v in self.futures.values()] + [h[0] for h in self._held]

    def submit(self, photo_id: int, path: str, kind: str, preview_only: bool = False,
               embed_faces: list | None = None, exclude: set[str] | None = None) -> bool:
        if preview_only or embed_faces is not None:
            return False        # previews and older faces are the local service's, when idle
        if self.fatal or not self.slots():
            return False
        if photo_id in self._suspects and self._suspect_out():
            # A KilledWorker cannot say which of the photos on the dead workers killed them.
            # Suspects go out one at a time, so one that only waited beside a crashing photo
            # is not out beside it again, and its retry succeeds.
            self._held.append((photo_id, path, kind, exclude))
            return True
        return self._submit(photo_id, path, kind, exclude)

    def _suspect_out(self) -> bool:
        return any(v[0] in self._suspects for v in self.futures.values())

    def _release(self) -> None:
        if self._held and not self._suspect_out():
            self._submit(*self._held.pop(0))

    def _submit(self, photo_id: int, path: str, kind: str, exclude: set[str] | None) -> bool:
        workers = [a for a, w in self._workers().items() if _name(a, w) not in exclude] if exclude else None
        if workers is not None and not workers:
            return False
        where = {"workers": workers, "allow_other_workers": False} if workers is not None else {}
        fut = self.client.submit(task.analyse, photo_id, path, kind, self.path_map, self.config_json, self.double,
                                 key=f"starsort-{photo_id}-{uuid.uuid4().hex[:8]}", pure=False, **where)
        self.futures[fut] = (photo_id, path, kind, set(exclude or ()))
        return True

    def poll(self, timeout: float = 0.2) -> list[Answer]:
        from distributed import wait
        out: list[Answer] = []
        self._release()
        if not self.futures:
            time.sleep(timeout)
            self._check_alive()
            return out
        try:
            done = wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except (FuturesTimeout, TimeoutError):
            done = set()
        except Exception as e:  # noqa: BLE001
            self._lost(e)
            return out
        results = self._gather([f for f in done if f.status == "finished"])
        for fut in done:
            photo_id, path, kind, excluded = self.futures.pop(fut)
            out += self._answer(fut, photo_id, path, kind, excluded, results.get(fut))
        if not done:
            self._check_alive()
        return out

    def _gather(self, finished: list) -> dict:
        """The results of finished futures, fetched in one round trip rather than one each: a
        cluster answers dozens of photos per poll, and asking for each alone cost the
        coordinator about 3 ms a photo of waiting. Any failure here leaves them to `_answer`,
        which asks for each and says what went wrong with it."""
        if len(finished) < 2:
            return {}
        try:
            return dict(zip(finished, self.client.gather(finished)))
        except Exception:  # noqa: BLE001 - e.g. a worker holding one result died since
            log.debug("gathering %d results together failed; asking for each", len(finished), exc_info=True)
            return {}

    def _answer(self, fut, photo_id: int, path: str, kind: str, excluded: set[str],
                result: tuple[str, Any] | None = None) -> list[Answer]:
        from distributed import KilledWorker
        try:
            status, payload = result if result is not None else fut.result()
        except KilledWorker:
            # Two workers died holding it. Dask cannot tell the photo that crashed them from one
            # that only waited beside it, so this is a crash for the retry policy, as a worker
            # crash is in the local pool: tried once more (alone: see `submit`), then quarantined.
            self._suspects.add(photo_id)
            return [Answer(photo_id, Status.CRASHED, "the Dask workers analysing it stopped (KilledWorker:"
                                                     " two worker deaths)")]
        except Exception as e:  # noqa: BLE001 - a bug on a worker: the retry policy decides
            if self.client.status not in ("running", "connecting"):
                self._lost(e)
                return []
            return [Answer(photo_id, Status.ERROR, f"{type(e).__name__}: {e}")]
        self._suspects.discard(photo_id)
        if status == "ok":
            return [Answer(photo_id, Status.OK, payload)]
        if status == "bad":
            return [Answer(photo_id, Status.BAD, payload)]
        # unreadable on that worker: another may read it
        excluded = excluded | {payload["worker"]}
        log.warning("worker %s cannot read %s (%s); trying another worker", payload["worker"], payload["path"],
                    payload["error"])
        if self.submit(photo_id, path, kind, exclude=excluded):
            return []
        return [Answer(photo_id, Status.ERROR, f"no worker can read it: {payload['path']} ({payload['error']};"
                                               f" tried {', '.join(sorted(excluded))})")]

    def _check_alive(self) -> None:
        if self.client.status not in ("running", "connecting") and not self.fatal:
            self._lost(RuntimeError(f"client {self.client.status}"))

    def _lost(self, e: BaseException) -> None:
        if self.fatal is None:
            self.fatal = (f"lost the Dask scheduler at {self.scheduler} ({type(e).__name__}: {e}); sort stopped."
                          " What was filed stays filed; run the same `starsort sort` again to go on.")

    def wait_ready(self, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while not self._workers():
            if time.monotonic() > end:
                raise RuntimeError(f"no Dask worker joined {self.scheduler} within {timeout:.0f}s")
            time.sleep(0.5)
            self._seen_at = 0.0

    def close(self) -> None:
        for fut in list(self.futures):
            fut.cancel()
        self.futures.clear()
        self._held.clear()
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing a client whose scheduler is gone
            pass


def _name(address: str, info: dict) -> str:
    """A worker's name as the task reports it (task.worker_name)."""
    return str(info["name"]) if info.get("name") is not None else address


def _allow_one_failure(dask_scheduler=None) -> None:
    dask_scheduler.allowed_failures = 1


def parse_path_map(items: list[str]) -> list[tuple[str, str]]:
    """["/mnt/nas=/Volumes/nas", ...] -> [("/mnt/nas", "/Volumes/nas"), ...]; ValueError says which."""
    out = []
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.startswith("/") or not dst.startswith("/"):
            raise ValueError(f"{item!r}: a path map is COORDINATOR_PATH=WORKER_PATH, both absolute")
        out.append((src, dst))
    return out
