"""Intake: which files the watcher takes, and a real observer that survives bad events."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from starsort.analysis import filetype
from starsort.intake import watcher

from ..helpers import wait_for


@pytest.mark.parametrize("rel", [
    ".DS_Store", "._DSC0001.ARW", "DSC0001.ARW.tmp", "DSC0001.JPG.part", "x.partial", "~DSC0001.JPG",
    ".hidden/DSC0001.ARW", "CaptureOne/Cache/Proxies/DSC0001.cof", "shoot/CaptureOne/Settings/x.cos",
    ".starsort-abc.tmp",
])
def test_hidden_temporary_and_cache_files_are_ignored(tmp_path, rel):
    assert filetype.is_ignored(tmp_path / rel, tmp_path)


@pytest.mark.parametrize("rel", ["DSC0001.ARW", "dsc0001.arw", "day1/IMG_1.JPEG", "IMG_2.jpg", "a/b/c.NEF",
                                 "IMG_3.CR3", "clip.MP4"])
def test_photos_in_any_case_and_other_files_are_taken(tmp_path, rel):
    assert not filetype.is_ignored(tmp_path / rel, tmp_path)


@pytest.mark.parametrize("name,kind", [("A.ARW", "raw"), ("a.arw", "raw"), ("B.JPG", "jpeg"), ("b.jpeg", "jpeg"),
                                       ("C.NEF", "raw"), ("D.cr3", "raw"), ("E.Dng", "raw"), ("F.RAF", "raw"),
                                       ("G.orf", "raw"), ("H.RW2", "raw"), ("I.CRW", "raw"), ("J.CR2", "raw"),
                                       ("K.xmp", "sidecar"), ("L.txt", "other")])
def test_extensions_are_classified_case_insensitively(name, kind):
    assert filetype.ext_kind(name) == kind


def test_the_scan_walks_subfolders_but_not_the_library_or_symlinks(tmp_path):
    inbox = tmp_path / "in"
    (inbox / "day1").mkdir(parents=True)
    (inbox / "day1" / "A.JPG").write_bytes(b"x")
    (inbox / "B.ARW").write_bytes(b"x")
    (inbox / ".C.JPG").write_bytes(b"x")
    (inbox / "outside").symlink_to(tmp_path)
    found = sorted(Path(p).relative_to(inbox).as_posix() for p in watcher.walk(inbox, tmp_path / "lib"))
    assert found == ["B.ARW", "day1/A.JPG"]


@pytest.mark.integration
def test_a_real_observer_records_new_files_and_new_folders_are_rescanned(tmp_path):
    inbox, lib = tmp_path / "in", tmp_path / "lib"
    recorded, rescans = [], []
    w = watcher.Watcher([inbox], lib, recorded.append, rescans.append)
    w.start()
    try:
        (inbox / "A.JPG").write_bytes(b"\xff\xd8\xff")
        (inbox / "x.tmp").write_bytes(b"temp")
        (inbox / "shoot").mkdir()
        assert wait_for(lambda: str(inbox / "A.JPG") in recorded)
        assert wait_for(lambda: str(inbox / "shoot") in rescans)
        (inbox / "part.JPG.part").write_bytes(b"1")
        (inbox / "part.JPG.part").rename(inbox / "part.JPG")   # tethering apps' temp-then-rename
        assert wait_for(lambda: str(inbox / "part.JPG") in recorded)
        assert not any(p.endswith(".tmp") or p.endswith(".part") for p in recorded)
    finally:
        w.stop()


@pytest.mark.integration
def test_an_exception_while_recording_does_not_kill_the_observer(tmp_path):
    inbox = tmp_path / "in"
    recorded: list[str] = []
    lock = threading.Lock()

    def flaky(path: str) -> None:
        with lock:
            if path.endswith("boom.JPG"):
                raise RuntimeError("database unavailable")
            recorded.append(path)

    w = watcher.Watcher([inbox], tmp_path / "lib", flaky, lambda _: None)
    w.start()
    try:
        (inbox / "boom.JPG").write_bytes(b"1")
        time.sleep(0.3)
        (inbox / "after.JPG").write_bytes(b"2")
        assert wait_for(lambda: str(inbox / "after.JPG") in recorded)
        assert all(o.is_alive() for o in w.observers.values())
    finally:
        w.stop()


def test_the_filesystem_type_of_a_folder_is_read_from_mountinfo(tmp_path):
    assert watcher.filesystem_type(tmp_path) is not None
    assert watcher.filesystem_type(Path("/proc")) == "proc"
