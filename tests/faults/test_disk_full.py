"""F4, F19: the library's disk fills up mid-copy, then space comes back.

The library is a small tmpfs (a separate filesystem, so filing copies through
a temp file, as onto an external disk) nearly filled by a filler file. Large
photos cannot fit. The daemon must leave no partial file in the library (no
temp file, no truncated final), keep every source in the inbox, keep the
photo waiting (state 'analysed', the error saying why), stay alive, and file
everything by itself once the filler is deleted and the filesystem grown.
Without root the same is checked by injecting ENOSPC at the copy's write and
at the link (STARSORT_FAIL_AT, a flag file standing for "the disk is full").

The analyser is the double: the disk, not the rating, is under test.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from ..helpers import files
from .checker import Originals
from .support import Daemon, record_result, unique_jpeg, unique_raw

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

BIG = "SonyDSC-P5_DSC00001.JPG"     # 1.1 MB


def _photos(inbox: Path) -> tuple[list[Path], list[Path]]:
    big = [unique_jpeg(inbox / "card" / f"BIG{i}.JPG", f"big{i}", base=BIG) for i in range(4)]
    small = [unique_jpeg(inbox / "card" / f"small{i}.jpg", f"small{i}") for i in range(4)]
    return big, small


def _temp_files(library: Path) -> set[str]:
    return {str(p) for p in library.rglob(".starsort-*")}


def _while_full(d: Daemon, originals: Originals, big: list[Path], why: str = "No space left") -> None:
    """The state while the disk is full, sampled over a few retries."""
    d.wait(lambda: d.count(f"SELECT count(*) FROM photos WHERE state = 'analysed' AND error LIKE '%{why}%'")
           == len(big), timeout=60, what="the big photos to wait for space")
    seen_temp: set[str] = set()
    for _ in range(4):                         # across several retries (rescan_interval is 1 s)
        time.sleep(0.7)
        temp = _temp_files(d.library)
        # A retry in flight may hold a temp file for a moment; none may outlive it.
        assert not (temp & seen_temp), f"temp files left behind by a failed copy: {temp & seen_temp}"
        seen_temp = temp
        d.check(originals, proc=d.proc, allow_temp=True)     # no truncated final, every source intact
    for p in big:
        assert p.exists(), f"{p} left the inbox although it could not be filed"
    rows = d.query("SELECT state, error FROM photos WHERE original_path IN (%s)" % ",".join("?" * len(big)),
                   tuple(str(p) for p in big))
    assert len(rows) == len(big) and all(s == "analysed" and why in e for s, e in rows), rows
    assert d.proc.poll() is None
    # One error per waiting photo, not one per retry.
    assert len([m for (m,) in d.query("SELECT message FROM events WHERE level = 'ERROR'")]) <= len(big), \
        d.query("SELECT message FROM events WHERE level = 'ERROR'")


def _resumes(d: Daemon, originals: Originals, n_photos: int) -> dict:
    d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == n_photos,
           timeout=60, what="filing to resume once space is back")
    summary = d.check(originals, proc=d.proc, drained=True)
    assert d.stop() == 0
    return summary


def test_a_full_library_disk_keeps_every_source_and_filing_resumes_when_space_returns(tmp_path, tmpfs):
    mnt = tmpfs(tmp_path / "mnt", "3m")
    if mnt is None:
        pytest.skip(f"cannot mount a small tmpfs ({tmpfs.why}); test_injected_filing_errors_keep_the_sources_and_file_nothing_twice covers the same")
    d = Daemon(tmp_path / "d", library=mnt.where / "library", settle=0.3, rescan=1.0)
    d.start()
    try:
        d.wait(d.started, what="the daemon to start")
        free = shutil.disk_usage(mnt.where).free
        filler = mnt.where / "filler"
        filler.write_bytes(b"\0" * max(0, free - 400 * 1024))
        big, small = _photos(d.inbox)
        originals = Originals.snapshot(big + small)
        t0 = time.monotonic()
        _while_full(d, originals, big)
        assert d.count("SELECT count(*) FROM photos WHERE state = 'done'") == len(small)  # small ones fit
        filler.unlink()
        mnt.resize("64m")
        summary = _resumes(d, originals, len(big) + len(small))
    finally:
        d.close()
    record_result("disk full (tmpfs)", files=len(originals), waited=len(big), photos=summary.get("db_done"),
                  errors_logged=len(d.errors()), losses=0, seconds=round(time.monotonic() - t0, 1))


@pytest.mark.parametrize("steps, errno, why", [
    ("write,link", "ENOSPC", "No space left"),        # the disk is full (no mount needed)
    ("fsync_dir", "EIO", "Input/output error"),       # F18: the link is made, its folder's fsync fails
])
def test_injected_filing_errors_keep_the_sources_and_file_nothing_twice(tmp_path, steps, errno, why):
    """ENOSPC or EIO at every such step while a flag file exists; then the flag goes and filing resumes."""
    full = tmp_path / "fault-on"
    full.touch()
    d = Daemon(tmp_path / "d", settle=0.3, rescan=1.0,
               env={"STARSORT_FAIL_AT": f"{steps}:{errno}:{full}"})
    d.start()
    try:
        d.wait(d.started, what="the daemon to start")
        big, small = _photos(d.inbox)
        originals = Originals.snapshot(big + small)
        _while_full(d, originals, big + small, why)
        assert not [p for p in files(d.library, symlinks=False) if not p.name.endswith(".xmp")]
        full.unlink()
        _resumes(d, originals, len(big) + len(small))
    finally:
        d.close()


def test_a_move_cut_by_a_crash_waits_for_space_at_restart_instead_of_stopping_the_daemon(tmp_path):
    """Killed half-way through a group (the RAW linked, the JPEG not); the disk is full when it comes back.
    Start-up recovery must not die on ENOSPC (a service manager would restart it into the same
    error forever): the group waits, whole in the inbox, and is filed once space returns."""
    d = Daemon(tmp_path / "d", settle=0.3, rescan=1.0)
    card = d.inbox / "card"
    originals = Originals.snapshot([unique_raw(card / "DSC1.ARW", "crash-full", base="KodakDC120_P003913.KDC"),
                                    unique_jpeg(card / "DSC1.JPG", "crash-full")])
    assert d.once(env={"STARSORT_CRASH_AT": "link:1"}).returncode == 137
    full = tmp_path / "fault-on"
    full.touch()
    d.start(env={"STARSORT_FAIL_AT": f"write,link:ENOSPC:{full}"})
    try:
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'analysed' AND error LIKE '%space%'")
               == 1, timeout=60, what="the interrupted group to wait for space")
        time.sleep(1.5)
        d.check(originals, proc=d.proc, allow_temp=True)
        assert (card / "DSC1.ARW").exists() and (card / "DSC1.JPG").exists()
        full.unlink()
        _resumes(d, originals, 1)
    finally:
        d.close()


def test_a_late_raw_that_cannot_follow_its_jpeg_for_lack_of_space_waits_in_the_inbox(tmp_path):
    """The JPEG was filed; its RAW lands while the disk is full. Following it must not stop the daemon."""
    d = Daemon(tmp_path / "d", settle=0.3, rescan=1.0)
    originals = Originals.snapshot([unique_jpeg(d.inbox / "DSC7.JPG", "late")])
    assert d.once().returncode == 0
    full = tmp_path / "fault-on"
    full.touch()
    d.start(env={"STARSORT_FAIL_AT": f"write,link:ENOSPC:{full}"})
    try:
        d.wait(d.started, what="the daemon to start")
        originals.add(unique_raw(d.inbox / "DSC7.ARW", "late", base="KodakDC120_P003913.KDC"))
        d.wait(lambda: d.count("SELECT count(*) FROM events WHERE message LIKE '%DSC7.ARW%'") >= 1,
               timeout=30, what="the failed follow to be reported")
        time.sleep(2)
        assert d.proc.poll() is None, d.tail()
        assert (d.inbox / "DSC7.ARW").exists()
        # Split by design while it waits (the JPEG was filed before the raw
        # existed); the interim check still requires nothing missing or partial.
        d.check(originals, proc=d.proc, crashed=True)
        full.unlink()
        d.wait(lambda: not (d.inbox / "DSC7.ARW").exists(), timeout=30, what="the raw to follow its JPEG")
        time.sleep(0.5)
        d.check(originals, proc=d.proc, drained=True)
        assert d.query("SELECT count(*), pair_path IS NOT NULL FROM photos") == [(1, 1)]
        assert d.stop() == 0
    finally:
        d.close()


def test_an_interrupted_follow_that_meets_a_full_disk_at_start_up_leaves_the_filed_photo_done(tmp_path, monkeypatch):
    """The journal holds a planned move of a late RAW next to its filed JPEG, and the disk is full
    when recovery tries to finish it. The JPEG's photo must stay 'done' (it is filed; sending it back
    to be filed again would mark it failed, its inbox file being long gone), the RAW must stay in the
    inbox whole, and the next run must let it follow."""
    import errno

    from starsort import crashpoints
    from starsort.config import Config
    from starsort import pipeline
    from starsort.library.context import Library
    from starsort.store.db import Writer

    d = Daemon(tmp_path / "d")
    originals = Originals.snapshot([unique_jpeg(d.inbox / "DSC9.JPG", "ifollow")])
    assert d.once().returncode == 0, d.tail()
    raw = unique_raw(d.inbox / "DSC9.ARW", "ifollow", base="KodakDC120_P003913.KDC")
    originals.add(raw)
    [(photo_id, current)] = d.query("SELECT id, current_path FROM photos")
    dst = Path(current).with_suffix(".ARW")
    cfg = Config.model_validate({"inboxes": [str(d.inbox)], "library": str(d.library),
                                 "database": str(d.db), "xmp": {"enabled": False}})
    svc = Library(cfg, Writer(cfg.database).start(), once=True)
    try:
        now = time.time()
        svc.call(lambda db: db.execute(          # what follow() journals before it moves the file
            "INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
            " VALUES (?, 'pair', ?, ?, 0, 'planned', ?, ?)", (photo_id, str(raw), str(dst), now, now)))
        monkeypatch.setattr(crashpoints, "ACTIVE", True)
        monkeypatch.setattr(crashpoints, "_fail", (frozenset({"write", "link"}), errno.ENOSPC, None))
        pipeline.recover(svc)
        monkeypatch.setattr(crashpoints, "_fail", None)
        assert svc.call(lambda db: db.execute("SELECT state FROM photos").fetchall()) == [("done",)]
        assert raw.exists() and not dst.exists()
        d.check(originals, crashed=True)
    finally:
        svc.writer.close()
    assert d.once().returncode == 0, d.tail()
    d.check(originals, drained=True)
    assert d.query("SELECT state, pair_path FROM photos") == [("done", str(dst))]
