"""The checker itself must fail on each kind of damage, or every fault test passing means nothing."""
from __future__ import annotations

import os
import shutil
import sqlite3

import pytest

from ..helpers import files
from .checker import Originals, check
from .support import sidecar, unique_jpeg, unique_raw

pytestmark = pytest.mark.faults


@pytest.fixture
def filed(tmp_path):
    """A library as starsort leaves it: a RAW+JPEG+XMP group and a lone JPEG filed, the inbox empty."""
    inbox, library, db = tmp_path / "inbox", tmp_path / "library", tmp_path / "db.sqlite"
    unique_raw(inbox / "DSC1.ARW", "r")
    unique_jpeg(inbox / "DSC1.JPG", "j")
    sidecar(inbox / "DSC1.xmp", "t")
    unique_jpeg(inbox / "lone.jpg", "l")
    originals = Originals.snapshot(files(inbox, symlinks=False))
    (library / "3-stars").mkdir(parents=True)
    for name in ("DSC1.ARW", "DSC1.JPG", "DSC1.xmp", "lone.jpg"):
        shutil.move(inbox / name, library / "3-stars" / name)
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE photos (id, state, current_path, pair_path); CREATE TABLE moves (state);")
    conn.close()
    return originals, inbox, library, db


def test_a_clean_filing_passes(filed):
    summary = check(*filed, drained=True)
    assert summary["in_library"] == 3


def test_a_lost_photo_fails(filed):
    originals, inbox, library, db = filed
    os.unlink(library / "3-stars" / "lone.jpg")
    with pytest.raises(AssertionError, match="LOST"):
        check(*filed)


def test_a_photo_filed_twice_fails(filed):
    originals, inbox, library, db = filed
    (library / "4-stars").mkdir()
    shutil.copyfile(library / "3-stars" / "lone.jpg", library / "4-stars" / "lone.jpg")
    with pytest.raises(AssertionError, match="DUPLICATED"):
        check(*filed)


def test_a_truncated_final_and_a_temp_file_fail(filed):
    originals, inbox, library, db = filed
    p = library / "3-stars" / "lone.jpg"
    p.write_bytes(p.read_bytes()[:100])
    (library / "3-stars" / ".starsort-abc.tmp").write_bytes(b"x")
    with pytest.raises(AssertionError) as e:
        check(*filed)
    assert "matches no original" in str(e.value) and "temp file" in str(e.value) and "LOST" in str(e.value)


def test_a_split_group_and_a_lost_sidecar_fail(filed):
    originals, inbox, library, db = filed
    shutil.move(library / "3-stars" / "DSC1.JPG", inbox / "DSC1.JPG")
    with pytest.raises(AssertionError, match="SPLIT"):
        check(*filed)
    shutil.move(inbox / "DSC1.JPG", library / "3-stars" / "DSC1.JPG")
    os.unlink(library / "3-stars" / "DSC1.xmp")
    with pytest.raises(AssertionError, match="sidecar"):
        check(*filed)


def test_a_group_renamed_apart_fails(filed):
    originals, inbox, library, db = filed
    os.rename(library / "3-stars" / "DSC1.JPG", library / "3-stars" / "DSC1_2.JPG")
    with pytest.raises(AssertionError, match="not together"):
        check(*filed)


def test_a_photo_left_in_the_inbox_fails_only_when_drained_is_required(filed):
    originals, inbox, library, db = filed
    shutil.move(library / "3-stars" / "lone.jpg", inbox / "lone.jpg")
    check(*filed)
    with pytest.raises(AssertionError, match="not filed"):
        check(*filed, drained=True)


def test_a_dead_daemon_fails(filed):
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(AssertionError, match="not running"):
        check(*filed, proc=proc)
    with pytest.raises(AssertionError, match="exit code 3"):
        check(*filed, proc=proc, stopped=True)


def test_a_placement_a_live_daemon_takes_back_while_the_checker_looks_is_not_damage(filed, monkeypatch):
    # The link of a filing whose folder fsync failed is undone by the daemon (its source
    # never left the inbox); the checker may list it a moment before it goes.
    from . import checker
    originals, inbox, library, db = filed
    taken_back = str(library / "5-stars" / "small2.jpg")
    real = checker._regular_files
    monkeypatch.setattr(checker, "_regular_files",
                        lambda root: real(root) + ([taken_back] if root == library else []))
    check(*filed, proc=_Alive())
    with pytest.raises(AssertionError, match="matches no original"):
        check(*filed)                                   # a stopped daemon: nothing may vanish under it


class _Alive:
    """A stand-in for a running daemon's Popen."""
    pid = os.getpid()

    def poll(self):
        return None
