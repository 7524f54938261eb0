"""F7, F9, F11, B12: events that never arrive, folders renamed and files deleted under the daemon.

Events are hints, the scan is the truth (watcher.py). These tests take the
events away and check the scans find every file:

* F7: the daemon is frozen with SIGSTOP while thousands of files arrive, then
  resumed; the inotify queue may overflow (watchdog drops IN_Q_OVERFLOW),
  and the periodic rescan must pick up whatever the observer missed.
* F9: files arrive while the daemon is stopped; some queued files are
  deleted and a folder of queued files is renamed before it starts again.
* F11, B12: a folder renamed and files deleted while photos in it are being
  analysed: handled without an error storm.

The analyser is the double (tests/faults/doubles.py): these tests are about
intake and settle; a slowed double keeps photos queued long enough to pull
folders out from under them.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .checker import Originals
from .support import LONG, Daemon, record_result, unique_jpeg, unique_raw

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def _make(folder, n: int, tag: str) -> list:
    out = []
    for i in range(n):
        if i % 5 == 0:
            out += [unique_raw(folder / f"L{i:05d}.ARW", f"{tag}{i}", base="KodakDC120_P003913.KDC"),
                    unique_jpeg(folder / f"L{i:05d}.JPG", f"{tag}{i}")]
        else:
            out.append(unique_jpeg(folder / f"L{i:05d}.JPG", f"{tag}{i}"))
    return out


def _photos(originals: Originals) -> int:
    return sum(1 for p in originals.files if p.endswith(".JPG"))


def test_files_that_arrive_while_the_daemon_is_frozen_are_all_found(tmp_path):
    total = 5000 if LONG else 400
    d = Daemon(tmp_path, settle=0.5, rescan=3.0)
    d.start()
    t0 = time.monotonic()
    try:
        d.wait(lambda: d.started() and "watching" in d.tail(), what="the watcher to start")
        os.kill(d.proc.pid, signal.SIGSTOP)
        originals = Originals()
        try:
            per = max(1, total // 8)
            for k in range(8):
                originals.add_many(_make(d.inbox / f"card{k}" / "DCIM", per, f"frozen{k}_"))
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") >= _photos(originals)
               and d.count("SELECT count(*) FROM inbox") == 0, timeout=300 + total / 5,
               what="every frozen-time file to be filed", interval=1.0)
        summary = d.check(originals, proc=d.proc, drained=True)
        scans = [ln for ln in d.tail(10**9).splitlines() if "scan of" in ln and "new file" in ln]
        assert d.stop() == 0
    finally:
        d.close()
    assert d.count("SELECT count(*) FROM photos WHERE state != 'done'") == 0
    assert len(d.errors()) == 0, d.errors()[:10]
    record_result("lost events, SIGSTOP", files=len(originals), photos=summary.get("db_done"),
                  rescans_that_found_files=len(scans), losses=0, seconds=round(time.monotonic() - t0, 1))


def test_files_added_deleted_and_renamed_while_the_daemon_is_down(tmp_path):
    """F9: some photos are queued but unprocessed when the daemon stops; then the user deletes some,
    renames a folder of them, and adds more. The start-up scan must reconcile all of it."""
    total = 2000 if LONG else 200
    d = Daemon(tmp_path, settle=0.2, rescan=2.0)
    first = _make(d.inbox / "day1", 40, "day1_") + _make(d.inbox / "day2", 40, "day2_")
    originals = Originals.snapshot(first)
    d.start(env={"STARSORT_FAKE_DELAY": "0.5"})     # slow, so most photos are still queued at the stop
    try:
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") >= 3, what="filing to begin")
        assert d.stop() == 0
    finally:
        d.close()
    queued = [p for (p,) in d.query("SELECT original_path FROM photos WHERE state = 'queued'"
                                    " AND pair_original_path IS NULL AND original_path LIKE ?",
                                    (str(d.inbox / "day1") + "%",))]
    assert len(queued) >= 10, "too few photos still queued to test deletion"
    for p in queued[:10]:                          # the user deletes ten queued photos
        os.unlink(p)
        originals.discard(p)
    # ... and a new, different photo later takes the name of one of them (a camera counter).
    originals.add(unique_jpeg(Path(queued[0]), "a new photo, same name"))
    os.rename(d.inbox / "day2", d.inbox / "day2-renamed")
    originals.rename_folder(d.inbox / "day2", d.inbox / "day2-renamed")
    originals.add_many(_make(d.inbox / "day3", total, "day3_"))

    t0 = time.monotonic()
    r = d.once(timeout=900)
    assert r.returncode == 0, d.tail()
    summary = d.check(originals, drained=True)
    log = d.tail(10**9)
    vanished = d.query("SELECT original_path, state, error FROM photos WHERE state NOT IN ('done')")
    # The deleted ones and the renamed folder's old paths close quietly; everything else is filed.
    assert all(s == "failed" and "disappeared" in (e or "") for _, s, e in vanished), vanished
    assert {p for p, _, _ in vanished} >= set(queued[1:10])
    assert len(d.errors()) <= 2, f"{len(d.errors())} ERROR lines for 10 deleted files and a renamed folder:\n" \
        + "\n".join(d.errors()[:20])
    record_result("lost events, daemon down", files=len(originals), photos=summary.get("db_done"),
                  deleted=10, closed_as_vanished=len(vanished), errors=len(d.errors()), losses=0,
                  seconds=round(time.monotonic() - t0, 1), log_lines=len(log.splitlines()))


def test_a_folder_renamed_and_files_deleted_during_processing(tmp_path):
    """F11, B12: no error storm, nothing filed from a stale path, everything still there filed once."""
    d = Daemon(tmp_path, settle=0.3, rescan=1.0, env={"STARSORT_FAKE_DELAY": "0.3"})
    d.start()
    try:
        d.wait(d.started, what="the daemon to start")
        originals = Originals.snapshot(_make(d.inbox / "import" / "A", 80 if LONG else 25, "ren_")
                                       + _make(d.inbox / "import" / "B", 20, "del_"))
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") >= 4, what="filing to begin")
        os.rename(d.inbox / "import" / "A", d.inbox / "import" / "A-renamed")
        originals.rename_folder(d.inbox / "import" / "A", d.inbox / "import" / "A-renamed")
        deleted = 0
        for p in sorted((d.inbox / "import" / "B").glob("*.JPG"))[::2]:
            if not p.with_suffix(".ARW").exists():
                p.unlink()
                originals.discard(p)
                deleted += 1
        # Give the daemon time to meet a deleted one, then reuse its name for a new photo.
        time.sleep(2)
        name = d.inbox / "import" / "B" / "L00002.JPG"
        assert not name.exists()
        originals.add(unique_jpeg(name, "reused name"))
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state IN ('queued', 'analysed', 'filing')") == 0
               and d.count("SELECT count(*) FROM inbox") == 0
               and d.count("SELECT count(*) FROM photos WHERE state = 'done'") >= _photos(originals),
               timeout=180, what="the renamed folder to be filed")
        d.check(originals, proc=d.proc, drained=True)
        errors = d.errors()
        stale = d.count("SELECT count(*) FROM photos WHERE state = 'failed' AND original_path LIKE ?"
                        .replace("?", repr(str(d.inbox / "import" / "A") + "/%")))
        assert stale >= 1, "no photo was queued under the old folder name; the rename came too late to test"
        assert d.stop() == 0
    finally:
        d.close()
    assert len(errors) <= 2, f"{len(errors)} ERROR lines after one rename and {deleted} deletions:\n" + \
        "\n".join(errors[:20])
    record_result("renamed and deleted during processing", files=len(originals), deleted=deleted,
                  errors=len(errors), losses=0)
