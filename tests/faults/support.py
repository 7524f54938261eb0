"""What the fault tests share: the daemon with its fast analysis double, unique inputs, tmpfs mounts,
and the figures each test records.

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
import subprocess
import time
from pathlib import Path

from ..daemon import Daemon as BaseDaemon
from ..helpers import DATA, TITLED_SIDECAR
from .checker import Originals, check  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parents[2]
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
    dest.write_text(TITLED_SIDECAR.format(title=title))
    return dest


class Daemon(BaseDaemon):
    """The shared daemon runner, with the fast analysis double by default and the checker."""

    def __init__(self, root: Path, *, analyser: str | None = FAKE, **kw):
        super().__init__(root, analyser=analyser, **kw)

    def check(self, originals: Originals, **kw) -> dict:
        return check(originals, self.inbox, self.library, self.db, **kw)


def can_mount() -> bool:
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


