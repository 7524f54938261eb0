"""Who may use the review page: it moves files, so it is a door into the photographer's library.

* It listens on loopback only (`web.server`), so only this machine reaches it.
* A per-install secret token, in a file of mode 0600 next to the database,
  proves the caller may read that file, i.e. is the photographer's user.
  `starsort review` opens `/?token=…`; the server swaps the token for an
  HttpOnly, SameSite=Strict cookie and redirects, so the token leaves the
  address bar (and the history). Scripts and the tray send
  `Authorization: Bearer TOKEN` instead.
* The Host header must name the loopback address the server listens on:
  a web page on the internet that rebinds its own DNS name to 127.0.0.1
  sends its own name as Host, and is refused (DNS rebinding).
* A state-changing request is a POST with a JSON body; with the cookie it
  must also carry the page's own Origin and the `X-Starsort` header, which
  a cross-site form or `fetch` without CORS cannot add. A Bearer request
  carries no cookie, so a browser never sends one on its own.
* Every answer says `nosniff`, forbids framing, and the page's CSP allows
  only its own scripts and styles.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "starsort_session"
CSRF_HEADER = "x-starsort"
TOKEN_FILE = "review-token"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self';"
       " font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def token_path(database: Path) -> Path:
    """The token lives next to the database: the service and the CLI always agree on that folder."""
    return Path(database).parent / TOKEN_FILE


def load_token(database: Path, create: bool = True) -> str | None:
    """The install's token; made (mode 0600, never readable by others) when missing."""
    path = token_path(database)
    try:
        token = path.read_text().strip()
        if token:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return token
    except FileNotFoundError:
        pass
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    try:
        # Two processes starting at once: the first token written wins.
        os.link(tmp, path)
    except FileExistsError:
        token = path.read_text().strip()
    finally:
        os.unlink(tmp)
    return token


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the cookie is not the token itself."""
    return hmac.new(token.encode(), b"starsort review session", hashlib.sha256).hexdigest()


def allowed_hosts(port: int) -> set[str]:
    return {f"127.0.0.1:{port}", f"[::1]:{port}", f"localhost:{port}"}


def allowed_origins(port: int) -> set[str]:
    return {f"http://{h}" for h in allowed_hosts(port)}


class Guard:
    """ASGI middleware: Host, authentication and CSRF checks, and the security headers.

    `port()` is where the server listens (known only once its socket is bound).
    Paths in `public` need no authentication (the page's own scripts and styles,
    and the login redirect); everything else does.
    """

    def __init__(self, app: ASGIApp, token: str, port, public: tuple[str, ...] = ("/static/",)):
        self.app = app
        self.token = token
        self.session = session_value(token)
        self.port = port
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        port = self.port()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                         (b"referrer-policy", b"no-referrer"),
                         (b"content-security-policy", CSP.encode()),
                         (b"cross-origin-opener-policy", b"same-origin"),
                         (b"cross-origin-resource-policy", b"same-origin")]
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in extra if h[0] not in names]
            await send(message)

        if headers.get("host", "") not in allowed_hosts(port):
            await PlainTextResponse("wrong Host: this page answers only on its loopback address\n",
                                    status_code=421)(scope, receive, send_with_headers)
            return
        path = scope["path"]
        via = self._authenticated(headers, scope)
        if via is None and not (path.startswith(self.public) or path == "/"):
            await JSONResponse({"error": "not signed in: open the page with `starsort review`, or send "
                                "Authorization: Bearer <token>"}, status_code=401)(scope, receive, send_with_headers)
            return
        scope.setdefault("state", {})["auth"] = via
        if scope["method"] not in ("GET", "HEAD"):
            problem = self._unsafe_request_problem(headers, via, port)
            if problem:
                await JSONResponse({"error": problem}, status_code=403)(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)

    def _authenticated(self, headers: Headers, scope: Scope) -> str | None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip(), self.token):
            return "bearer"
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value, self.session):
                return "cookie"
        return None

    def _unsafe_request_problem(self, headers: Headers, via: str | None, port: int) -> str | None:
        if via is None:
            return "not signed in"
        if not headers.get("content-type", "").split(";")[0].strip() == "application/json":
            return "a change must be a POST with a JSON body"
        if via == "cookie":
            if headers.get("origin") not in allowed_origins(port):
                return "cross-origin request refused"
            if headers.get(CSRF_HEADER) != "1":
                return "missing the X-Starsort header"
        return None
