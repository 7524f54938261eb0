"""The review page's routes and its JSON API (a contract: the tray, scripts and checks use it).

    GET  /api/status                         `starsort status --json`
    GET  /api/counts                         how many photos each filter shows
    GET  /api/photos?limit&after&stars&state&filter&reason&person   newest first
    GET  /api/photos/ID                      one photo
    GET  /api/photos/ID/preview/s|l|full     its previews (ETag, cached for a year)
    GET  /api/bursts/ID                      a burst's frames, in shooting order
    GET  /api/whatif?threshold=T             how many photos T would re-rate
    GET  /api/events?since=N                 Server-Sent Events: photo, status, notice
    POST /api/photos/ID                      {"stars": 1..5} | {"reject": true} | {"pick": true} | {"machine": true}
    POST /api/undo                           the last override, put back
    POST /api/rerate                         {"threshold": T}: re-rate every photo not decided by the photographer
    POST /api/intake                         {"paused": true|false[, "by": "tray"]}: pause or resume intake
    GET  /api/people                         every person with their faces (ids and boxes)
    POST /api/people                         {"op": "name"|"merge"|"split"|"assign"|"not"|"forget", ...}
    POST /api/people/find                    {"vectors": [[128 numbers]], "threshold": T, "expand": E}: the faces within T
    GET  /api/requests/N                     how request N went: {"done": false} until it has

Every POST answers 202: the service's deciding thread carries it out (moving
files through its journal) within a second; the photo's row shows the result,
and a `notice` event says how it went. The web layer itself only reads the
database (its own read-only connections) and hands requests over. The one
exception is /api/intake, which throws the pause switch (starsort.pause, a
file beside the database, not a row in it) and answers 200 with the status.

URLs carry photo ids, never paths; nothing here serves a folder. Parameters
are checked against what each accepts, so a path smuggled into one is a 400.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from sqlite_utils import Database
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import pause
from ..config import Config
from ..store import health, review
from ..store.db import connect
from . import previews, security

log = logging.getLogger("starsort.web")

STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
          "icon.svg": "image/svg+xml"}
MAX_LIMIT = 1000
FEED_INTERVAL = 0.2
STATUS_INTERVAL = 2.0


class BadRequest(Exception):
    pass


@dataclass
class Backend:
    """What the page needs from the process serving it."""
    database: Path
    config: Callable[[], Config]                         # the config in force (the threshold may change)
    submit: Callable[[dict], int]                        # hand a request to the deciding thread
    notices: Callable[[int], tuple[int, list[dict]]]     # request outcomes after number N
    status_extra: Callable[[], dict] = dict              # what the server adds to `status --json`


class Readers:
    """A read-only connection per server thread: the page never writes."""

    def __init__(self, database: Path):
        self.database = database
        self._local = threading.local()

    def db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.database, readonly=True)
            self._local.db = db
        return db


def _int(request: Request, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadRequest(f"{name} must be a whole number from {lo} to {hi}")
    return int(raw)


def _float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    if not 0 < value < 10_000:
        raise BadRequest(f"{name} must be above 0")
    return value


def _only(request: Request, allowed: set[str]) -> None:
    extra = set(request.query_params) - allowed
    if extra:
        raise BadRequest(f"unknown parameter(s): {', '.join(sorted(extra))}")


def create_app(backend: Backend, token: str, port: Callable[[], int], stopping: threading.Event) -> Any:
    """The ASGI app: the routes behind `security.Guard`. `stopping` ends the event streams."""
    readers = Readers(backend.database)

    def status_json() -> dict:
        out = health.status(readers.db(), backend.config())
        out["blur_threshold"] = backend.config().blur.threshold
        out["settings"] = {}
        out.update(backend.status_extra())
        return out

    async def index(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not security.hmac.compare_digest(given, token):
                return JSONResponse({"error": "wrong token"}, status_code=401)
            # Swap the token for a cookie, and take it out of the address bar.
            r = RedirectResponse("/", status_code=303)
            r.set_cookie(security.COOKIE, security.session_value(token), httponly=True, samesite="strict",
                         path="/")
            return r
        if request.scope["state"].get("auth") is None:
            return Response(_SIGNED_OUT, status_code=401, media_type="text/html; charset=utf-8")
        return Response(_page(), media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return JSONResponse({"error": "not found"}, status_code=404)
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name], headers={"cache-control": "no-cache"})

    def api(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        def endpoint(request: Request) -> Response:
            try:
                result = fn(request)
            except BadRequest as e:
                return JSONResponse({"error": str(e)}, status_code=400)
            if isinstance(result, Response):
                return result
            return JSONResponse(result, headers={"cache-control": "no-store"})
        return endpoint

    def photos(request: Request) -> Any:
        _only(request, {"limit", "after", "stars", "state", "filter", "reason", "person"})
        state = request.query_params.get("state")
        if state is not None and state not in review.STATES:
            raise BadRequest(f"state must be one of {', '.join(review.STATES)}")
        filter_ = request.query_params.get("filter")
        if filter_ is not None and filter_ not in review.FILTERS:
            raise BadRequest(f"filter must be one of {', '.join(review.FILTERS)}")
        reason = request.query_params.get("reason")
        db = readers.db()
        # The change number first: a change made while the list is read is
        # sent again by the event stream rather than missed.
        seq = review.change_number(db)
        rows = review.photos(db, backend.config(), limit=_int(request, "limit", 1, MAX_LIMIT, 200),
                             after=_int(request, "after", 0, 2**62), stars=_int(request, "stars", 1, 5),
                             state=state, filter_=filter_, reason=reason,
                             person=_int(request, "person", 1, 2**62))
        return JSONResponse(rows, headers={"cache-control": "no-store", "x-starsort-seq": str(seq)})

    def one(request: Request) -> Any:
        _only(request, set())
        row = review.photo(readers.db(), backend.config(), request.path_params["id"])
        if row is None:
            return JSONResponse({"error": "no such photo"}, status_code=404)
        return row

    def preview(request: Request) -> Response:
        _only(request, {"v"})
        size = request.path_params["size"]
        if size not in previews.SIZES:
            return JSONResponse({"error": "size must be s, l or full"}, status_code=404)
        row = readers.db().execute("SELECT preview, current_path, kind, state FROM photos WHERE id = ?",
                                   [request.path_params["id"]]).fetchone()
        if row is None:
            return JSONResponse({"error": "no such photo"}, status_code=404)
        found = previews.find(backend.config().review.previews, row[0], size, row[1], row[2])
        if found is None:
            return JSONResponse({"error": "no preview yet"}, status_code=404)
        path, etag = found
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        return FileResponse(path, media_type="image/jpeg", headers={
            "etag": etag, "cache-control": "private, max-age=31536000, immutable"})

    def burst(request: Request) -> Any:
        _only(request, set())
        return review.burst(readers.db(), backend.config(), request.path_params["id"])

    def counts(request: Request) -> Any:
        _only(request, set())
        return review.counts(readers.db(), backend.config())

    def status(request: Request) -> Any:
        _only(request, set())
        return status_json()

    def whatif(request: Request) -> Any:
        _only(request, {"threshold"})
        cfg = backend.config()
        t = _float(request, "threshold") or cfg.blur.threshold
        trial = cfg.model_copy(update={"blur": cfg.blur.model_copy(update={"threshold": t})})
        changes = review.rerate_changes(readers.db(), trial)
        moves: dict[str, int] = {}
        for _, old, new in changes:
            key = f"{old}->{new}"
            moves[key] = moves.get(key, 0) + 1
        return {"threshold": t, "threshold_in_force": cfg.blur.threshold, "changes": len(changes),
                "moves": moves}

    async def change(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        photo_id = request.path_params["id"]
        if not isinstance(body, dict) or len(body) != 1:
            return JSONResponse({"error": 'send one of {"stars": 1..5}, {"reject": true}, {"pick": true},'
                                 ' {"machine": true}'}, status_code=400)
        (key, value), = body.items()
        if key == "stars" and isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
            req = {"action": "stars", "photo": photo_id, "stars": value}
        elif key in ("reject", "pick", "machine") and value is True:
            req = {"action": key, "photo": photo_id}
        else:
            return JSONResponse({"error": f"{key}: not a change this API makes"}, status_code=400)
        exists = await asyncio.to_thread(
            lambda: readers.db().execute("SELECT 1 FROM photos WHERE id = ?", [photo_id]).fetchone())
        if exists is None:
            return JSONResponse({"error": "no such photo"}, status_code=404)
        n = backend.submit(req)
        return JSONResponse({"accepted": True, "request": n}, status_code=202)

    async def undo(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if body not in ({}, None):
            return JSONResponse({"error": "undo takes an empty JSON object"}, status_code=400)
        return JSONResponse({"accepted": True, "request": backend.submit({"action": "undo"})}, status_code=202)

    async def rerate(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(body, dict) or set(body) - {"threshold"}:
            return JSONResponse({"error": 'send {"threshold": T} (or {} for the threshold in force)'},
                                status_code=400)
        t = body.get("threshold")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 10_000):
            return JSONResponse({"error": "threshold must be a number above 0"}, status_code=400)
        req = {"action": "rerate", **({"threshold": float(t)} if t is not None else {})}
        return JSONResponse({"accepted": True, "request": backend.submit(req)}, status_code=202)

    async def people_change(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        problem = _people_request_problem(body)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        return JSONResponse({"accepted": True, "request": backend.submit({"action": "people", **body})},
                            status_code=202)

    def people_list(request: Request) -> Any:
        _only(request, set())
        from ..store import people as people_store
        out = people_store.listing(readers.db())
        for p in out:
            for f in p["faces"]:
                f.pop("path", None)            # ids, never paths
        return out

    vector_cache = None
    cache_lock = threading.Lock()

    async def people_find(request: Request) -> Response:
        """The running service's search: the caller embedded its reference face; the library's
        vectors are this process's in-memory matrix, brought up to date, and searched exactly."""
        nonlocal vector_cache
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        vecs = body.get("vectors") if isinstance(body, dict) else None
        t = body.get("threshold") if isinstance(body, dict) else None
        e = body.get("expand", 0) if isinstance(body, dict) else None
        if (not isinstance(vecs, list) or not vecs or len(vecs) > 10_000
                or not all(isinstance(v, list) and len(v) == 128 for v in vecs)
                or not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t < 2
                or not isinstance(e, (int, float)) or isinstance(e, bool) or not 0 <= e < 2):
            return JSONResponse({"error": 'send {"vectors": [[128 numbers], ...], "threshold": T, "expand": E}'},
                                status_code=400)
        from ..store import people as people_store

        def search() -> list[dict]:
            nonlocal vector_cache
            import numpy as np
            with cache_lock:
                if vector_cache is None:
                    vector_cache = people_store.VectorCache()
                current = vector_cache.current(readers.db())
            found = people_store.find(current, np.asarray(vecs, np.float32), float(t), float(e))
            return [{"face_id": m.face_id, "photo_id": m.photo_id, "distance": round(m.distance, 4)} for m in found]
        try:
            return JSONResponse(await asyncio.to_thread(search))
        except (TypeError, ValueError):
            return JSONResponse({"error": "vectors must hold numbers"}, status_code=400)

    def request_outcome(request: Request) -> Any:
        _only(request, set())
        n = request.path_params["n"]
        _, notices = backend.notices(0)          # the newest few hundred outcomes
        done = [x for x in notices if x.get("request") == n]
        return {**done[0], "done": True} if done else {"request": n, "done": False}

    async def intake(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if (not isinstance(body, dict) or not isinstance(body.get("paused"), bool) or set(body) - {"paused", "by"}
                or not isinstance(body.get("by", ""), str) or len(body.get("by", "")) > 40):
            return JSONResponse({"error": 'send {"paused": true} or {"paused": false}'}, status_code=400)
        database = backend.config().database
        if body["paused"]:
            pause.pause(database, by=body.get("by") or "review page")
        else:
            pause.resume(database)
        return JSONResponse(await asyncio.to_thread(status_json))

    async def events(request: Request) -> Response:
        try:
            _only(request, {"since"})
            since = _int(request, "since", 0, 2**62)
        except BadRequest as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        if since is None:
            last = request.headers.get("last-event-id", "")
            since = int(last) if last.isdigit() else None

        async def stream():
            seq = since if since is not None else await asyncio.to_thread(
                lambda: review.change_number(readers.db()))
            notice_n, _ = backend.notices(-1)
            next_status = 0.0
            yield "retry: 1000\n\n"
            while not stopping.is_set():
                if await request.is_disconnected():
                    return
                # readers.db() inside the worker: each thread reads through its own connection.
                seq2, rows = await asyncio.to_thread(lambda: review.changes(readers.db(), backend.config(), seq))
                for row in rows:
                    yield f"id: {row['seq']}\nevent: photo\ndata: {json.dumps(row)}\n\n"
                seq = seq2
                notice_n, notes = backend.notices(notice_n)
                for note in notes:
                    yield f"event: notice\ndata: {json.dumps(note)}\n\n"
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + STATUS_INTERVAL
                    yield f"event: status\ndata: {json.dumps(await asyncio.to_thread(status_json))}\n\n"
                await asyncio.sleep(FEED_INTERVAL)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/status", api(status)),
        Route("/api/counts", api(counts)),
        Route("/api/photos", api(photos)),
        Route("/api/photos/{id:int}", api(one), methods=["GET"]),
        Route("/api/photos/{id:int}", change, methods=["POST"]),
        Route("/api/photos/{id:int}/preview/{size}", api(preview)),
        Route("/api/bursts/{id:int}", api(burst)),
        Route("/api/whatif", api(whatif)),
        Route("/api/events", events),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/rerate", rerate, methods=["POST"]),
        Route("/api/intake", intake, methods=["POST"]),
        Route("/api/people", api(people_list), methods=["GET"]),
        Route("/api/people", people_change, methods=["POST"]),
        Route("/api/people/find", people_find, methods=["POST"]),
        Route("/api/requests/{n:int}", api(request_outcome)),
    ]
    return security.Guard(Starlette(routes=routes), token, port)


_PEOPLE_OPS = {"name": {"person", "name"}, "merge": {"person", "other"}, "split": {"person", "faces"},
               "assign": {"face", "person"}, "not": {"face", "person"}, "forget": set()}


def _people_request_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("op") not in _PEOPLE_OPS:
        return f'send {{"op": one of {", ".join(sorted(_PEOPLE_OPS))}, ...}}'
    need = _PEOPLE_OPS[body["op"]]
    extra = set(body) - need - {"op", "name"}
    if need - set(body) or extra:
        return f"{body['op']} takes {', '.join(sorted(need)) or 'nothing more'}"
    for key in ("person", "other"):
        if key in body and not (isinstance(body[key], int) or (isinstance(body[key], str) and 0 < len(body[key]) <= 200)):
            return f"{key} must be a person id or a name"
    if "face" in body and (isinstance(body["face"], bool) or not isinstance(body["face"], int)):
        return "face must be a face id"
    if "faces" in body and (not isinstance(body["faces"], list) or not body["faces"]
                            or not all(isinstance(f, int) and not isinstance(f, bool) for f in body["faces"])):
        return "faces must be a list of face ids"
    if "name" in body and body["name"] is not None and (not isinstance(body["name"], str)
                                                          or not 0 < len(body["name"].strip()) <= 200):
        return "name must be a non-empty text"
    return None


def _page() -> bytes:
    return resources.files(__package__).joinpath("static", "index.html").read_bytes()


_SIGNED_OUT = b"""<!doctype html><meta charset="utf-8"><title>starsort</title>
<p>This page needs its key. Open it with <code>starsort review</code>, which signs you in.</p>
"""
