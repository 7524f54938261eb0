"""Shared tooling for the fault tests: the daemon as a subprocess, inputs, mounts.

Short by default so `make test` stays quick; STARSORT_FAULTS_LONG=1 (what
`make faults` sets) runs the long versions. Each test records its figures
with `record_result`, which prints one summary line (visible with -s) and
appends to .faults-results.json at the repository root (git-ignored) for the
README's figures.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .checker import Originals, check  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
LONG = os.environ.get("STARSORT_FAULTS_LONG", "") not in ("", "0")
RESULTS = ROOT / ".faults-results.json"
FAKE = "tests.faults.doubles:serve"


def record_result(test: str, **figures) -> None:
    line = {"test": test, "long": LONG, **figures}
    print(f"\nFAULTS {json.dumps(line)}", flush=True)
    try:
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    except ValueError:
        data = {}
    data[test + (" (long)" if LONG else " (short)")] = {**line, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime())}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def unique_jpeg(dest: Path, tag: str, base: str = "clapton-2.jpg") -> Path:
    """A real JPEG made unique by a COM segment after SOI, so every file has its own bytes."""
    data = (DATA / base).read_bytes()
    comment = f"starsort fault test {tag}".encode()
    seg = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.writing"
    tmp.write_bytes(data[:2] + seg + data[2:])
    os.rename(tmp, dest)   # hidden temp name, so the daemon never sees a half-written file
    return dest


def unique_raw(dest: Path, tag: str, base: str = "two_people.ARW") -> Path:
    """A raw made unique by overwriting its last 16 bytes; it keeps its size and TIFF structure.
    The KDC fixture still decodes afterwards (its tail is sensor data); the ARW's tail is its
    embedded preview, so a unique ARW is only for tests that use the analysis double."""
    data = bytearray((DATA / base).read_bytes())
    t = _tag(tag)
    data[-len(t):] = t
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.writing"
    tmp.write_bytes(bytes(data))
    os.rename(tmp, dest)
    return dest


def _tag(tag: str) -> bytes:
    import hashlib
    return hashlib.sha256(tag.encode()).digest()[:16]


def sidecar(dest: Path, title: str) -> Path:
    dest.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>'
        f'<rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title></rdf:Description>'
        '</rdf:RDF></x:xmpmeta>')
    return dest


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


class Daemon:
    """starsort as a subprocess on its own folders; `analyser=None` runs the real pipeline."""

    def __init__(self, root: Path, *, library: Path | None = None, settle: float = 0.3,
                 rescan: float = 2.0, analyser: str | None = FAKE, mode: str = "move",
                 env: dict | None = None, xmp: bool = True):
        self.root = root
        self.inbox = root / "inbox"
        self.library = library or root / "library"
        self.db = root / "state" / "starsort.db"
        self.config = root / "config.yaml"
        self.logfile = root / "daemon.log"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"inboxes: [{self.inbox}]\nlibrary: {self.library}\ndatabase: {self.db}\n"
            f"mode: {mode}\nsettle_seconds: {settle}\nrescan_interval: {rescan}\n"
            f"xmp:\n  enabled: {'true' if xmp else 'false'}\n")
        self.env = {**os.environ, "HOME": str(root), "XDG_CONFIG_HOME": str(root / "cfg"),
                    "XDG_STATE_HOME": str(root / "xdgstate"),
                    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        for k in ("STARSORT_CRASH_AT", "STARSORT_FAIL_AT", "STARSORT_CRASH_TRACE", "STARSORT_TEST_ANALYSER",
                  "STARSORT_FAKE_DELAY"):
            self.env.pop(k, None)
        if analyser:
            self.env["STARSORT_TEST_ANALYSER"] = analyser
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self._log = None

    def _cmd(self, once: bool) -> list[str]:
        return [sys.executable, "-m", "starsort", "run", "--config", str(self.config), *(["--once"] if once else [])]

    def once(self, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        with open(self.logfile, "a") as log:
            log.write(f"\n==== run --once {env or ''}\n")
            log.flush()
            return subprocess.run(self._cmd(True), env={**self.env, **(env or {})}, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout)

    def start(self, env: dict | None = None) -> subprocess.Popen:
        self._log = open(self.logfile, "a")
        self._log.write(f"\n==== run {env or ''}\n")
        self._log.flush()
        self.proc = subprocess.Popen(self._cmd(False), env={**self.env, **(env or {})}, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        return self.proc

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        if self._log:
            self._log.close()
            self._log = None
        return code

    def stop(self) -> int:
        return self.kill(signal.SIGTERM)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def count(self, sql: str) -> int:
        r = self.query(sql)
        return r[0][0] if r and r[0][0] is not None else 0

    def wait(self, pred, timeout: float = 120, what: str = "", interval: float = 0.2) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited early ({self.proc.returncode}):\n{self.tail()}")
            if pred():
                return
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.tail()}")

    def started(self) -> bool:
        return bool(self.query("SELECT heartbeat_at FROM service WHERE pid = ?", (self.proc.pid,)))

    def tail(self, n: int = 4000) -> str:
        return self.logfile.read_text(errors="replace")[-n:] if self.logfile.exists() else ""

    def errors(self) -> list[str]:
        """ERROR lines in the log, and ERROR events in the database."""
        lines = [ln for ln in self.tail(10**9).splitlines() if " ERROR " in ln or ln.startswith("ERROR")]
        return lines + [m for (m,) in self.query("SELECT message FROM events WHERE level = 'ERROR'")]

    def rss_kb(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except (OSError, AttributeError):
            return None
        return None

    def check(self, originals: Originals, **kw) -> dict:
        return check(originals, self.inbox, self.library, self.db, **kw)


@pytest.fixture
def daemon_factory(tmp_path):
    made: list[Daemon] = []

    def make(sub: str = "d", **kw) -> Daemon:
        d = Daemon(tmp_path / sub, **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


class Tmpfs:
    """A tmpfs mounted for one test; unmounted (lazily, if busy) at teardown."""

    def __init__(self, where: Path, size: str):
        self.where = where
        where.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError(f"mount -t tmpfs failed: {r.stderr.strip()}")
        self.mounted = True

    def resize(self, size: str) -> None:
        r = subprocess.run(["mount", "-o", f"remount,size={size}", str(self.where)], capture_output=True, text=True)
        if r.returncode != 0:
            raise OSError(f"remount failed: {r.stderr.strip()}")

    def umount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.where)], capture_output=True)
            self.mounted = False


@pytest.fixture
def tmpfs(tmp_path):
    """mount(where, size) -> Tmpfs, or None (with the reason in .why) when mounting is not possible."""
    mounts: list[Tmpfs] = []

    def mount(where: Path, size: str = "64m") -> Tmpfs | None:
        if not _can_mount():
            mount.why = "mounting a tmpfs needs root (and mount(8))"
            return None
        try:
            t = Tmpfs(where, size)
        except OSError as e:
            mount.why = str(e)
            return None
        mounts.append(t)
        return t
    mount.why = ""
    yield mount
    for t in mounts:
        t.umount()
