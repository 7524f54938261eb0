"""Changes asked for from outside the deciding thread, carried out on it, one at a time.

The review page (its server threads) and the library watcher (a move made by
hand in a file manager) never change anything themselves: they `submit` a
request, and the loop `run`s the queue between its other steps, so every
move still goes through the one writer and the journal, in one order.
Each request's outcome is kept (the newest few hundred) for the page's
`notice` events.
"""
from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from typing import Any, Callable

from ..library import overrides
from ..library import people
from ..library.context import Library

log = logging.getLogger("starsort.service")

KEEP_NOTICES = 500


class Requests:
    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue()
        self._numbers = itertools.count(1)
        self._notices: deque[dict] = deque(maxlen=KEEP_NOTICES)
        self._lock = threading.Lock()
        self._n = 0

    def submit(self, request: dict) -> int:
        """From any thread: queue a request; returns its number."""
        n = next(self._numbers)
        self._q.put({**request, "request": n})
        return n

    def pending(self) -> int:
        return self._q.qsize()

    def wait(self, timeout: float) -> bool:
        """Block until a request is queued (or `timeout`); for a loop with nothing else to wait on."""
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return False
        self._q.put(item)
        return True

    def notices(self, after: int) -> tuple[int, list[dict]]:
        """(the newest notice number, the notices after `after`); after=-1 asks only for the number."""
        with self._lock:
            if after < 0:
                return self._n, []
            return self._n, [n for n in self._notices if n["n"] > after]

    def _notify(self, **notice: Any) -> None:
        with self._lock:
            self._n += 1
            self._notices.append({**notice, "n": self._n, "at": time.time()})

    def run(self, lib: Library, rerate: Callable[[float | None], dict], stop: threading.Event | None = None) -> int:
        """Carry out every queued request, in order; returns how many."""
        done = 0
        while stop is None or not stop.is_set():
            try:
                req = self._q.get_nowait()
            except queue.Empty:
                break
            done += 1
            action = req["action"]
            try:
                outcome = _carry_out(lib, req, rerate)
            except (overrides.Refused, people.Refused) as e:
                log.warning("%s refused: %s", action, e)
                self._notify(request=req["request"], action=action, photo=req.get("photo"), ok=False,
                             message=str(e))
                continue
            except Exception as e:  # noqa: BLE001 - one bad request must not stop the service
                log.exception("%s failed", action)
                self._notify(request=req["request"], action=action, photo=req.get("photo"), ok=False,
                             message=f"{type(e).__name__}: {e}")
                continue
            self._notify(request=req["request"], action=action, ok=True, **outcome)
        return done


def _carry_out(lib: Library, req: dict, rerate: Callable[[float | None], dict]) -> dict:
    action = req["action"]
    if action == "stars":
        d = overrides.set_stars(lib, req["photo"], req["stars"])
    elif action == "reject":
        d = overrides.reject(lib, req["photo"])
    elif action == "pick":
        d = overrides.pick(lib, req["photo"])
    elif action == "machine":
        d = overrides.to_machine(lib, req["photo"])
    elif action == "undo":
        d = overrides.undo_last(lib)
        if d is None:
            return {"photo": None, "message": "nothing to undo"}
    elif action == "moved":
        d = overrides.moved_by_hand(lib, req["src"], req["dst"])
        if d is None:
            return {"photo": None, "message": "not a filed photo's file"}
    elif action == "rerate":
        return {"photo": None, **rerate(req.get("threshold"))}
    elif action == "people":
        return {"photo": None, **people_action(lib, req)}
    else:
        raise overrides.Refused(f"unknown request {action!r}")
    return {"photo": d.photo_id, "message": d.message}


def people_action(lib: Library, req: dict) -> dict:
    """`starsort people name|merge|split|assign|not|forget`, and the page's People view."""
    op = req["op"]
    if op == "name":
        out = people.name(lib, req["person"], req["name"])
        return {**out, "message": f"person {out['person_id']} is {out['name']} ({out['photos']} photo(s))"}
    if op == "merge":
        out = people.merge(lib, req["person"], req["other"])
        return {**out, "message": f"merged into person {out['person_id']}"}
    if op == "split":
        out = people.split(lib, req["person"], req["faces"], req.get("name"))
        return {**out, "message": f"{out['faces']} face(s) are now person {out['person_id']}"}
    if op == "assign":
        out = people.assign_face(lib, req["face"], req["person"])
        return {**out, "message": f"face {out['face_id']} is person {out['person_id']}"}
    if op == "not":
        out = people.not_this_person(lib, req["face"], req["person"])
        return {**out, "message": f"face {out['face_id']} is not person {out['person_id']}"}
    if op == "forget":
        n = people.forget(lib)
        return {"vectors": n, "message": f"forgot {n} face vector(s) and every person"}
    raise people.Refused(f"unknown people action {op!r}")
