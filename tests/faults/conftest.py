"""Fixtures of the fault tests; the tooling they use is in `support.py`."""
from __future__ import annotations

from pathlib import Path

import pytest

from .support import Daemon, Tmpfs, can_mount


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


@pytest.fixture
def tmpfs(tmp_path):
    """mount(where, size) -> Tmpfs, or None (with the reason in .why) when mounting is not possible."""
    mounts: list[Tmpfs] = []

    def mount(where: Path, size: str = "64m") -> Tmpfs | None:
        if not can_mount():
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
