"""F6, F10: arrivals faster than analysis, and the same event delivered many times.

F6. Photos land at 10 files/s (lone JPEGs and RAW+JPEG pairs) while analysis
is slowed to ~6 photos/s, so a backlog builds. It must live in SQLite, not in
the daemon's memory: the daemon's RSS (/proc/<pid>/status VmRSS, the service
process; the worker is separate) is sampled throughout and must stay flat.
Every file must be filed exactly once. Short: 100 files; long: 1,200.

The analyser is the double with STARSORT_FAKE_DELAY: a backlog needs analysis
slower than arrival, and what is measured (memory of the queue, filing each
file once) is the service's, not the analyser's.

F10. Every watchdog event for a file is delivered 2-5 times, shuffled, with
modified-event storms, a moved event with an empty source, bytes paths and
folder events, into the real handler and intake: one photo per file.
"""
from __future__ import annotations

import os
import random
import statistics
import threading
import time
from pathlib import Path

import pytest
from watchdog.events import (DirCreatedEvent, FileClosedEvent, FileCreatedEvent, FileModifiedEvent,
                             FileMovedEvent, FileOpenedEvent)

from starsort.intake import pairing, scan, settle, watcher

from ..helpers import files
from .checker import Originals
from .support import LONG, Daemon, record_result, unique_jpeg, unique_raw

pytestmark = pytest.mark.faults


@pytest.mark.e2e
def test_a_burst_faster_than_analysis_is_queued_in_sqlite_with_flat_memory(tmp_path):
    total = 1200 if LONG else 100
    rate = 10.0
    d = Daemon(tmp_path, settle=0.5, rescan=5.0, env={"STARSORT_FAKE_DELAY": "0.16"})
    originals = Originals()
    arrived: dict[str, float] = {}
    d.start()
    samples: list[tuple[float, int]] = []
    backlog_max = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal backlog_max
        while not stop.is_set():
            kb = d.rss_kb()
            if kb:
                samples.append((time.monotonic(), kb))
            backlog_max = max(backlog_max, d.count("SELECT count(*) FROM photos WHERE state = 'queued'"))
            stop.wait(0.5)

    try:
        d.wait(d.started, what="the daemon to start")
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        written, i = 0, 0
        while written < total:
            i += 1
            folder = d.inbox / f"card{i // 100}"
            if i % 3 == 0:
                paths = [unique_raw(folder / f"B{i:05d}.ARW", f"burst{i}", base="KodakDC120_P003913.KDC"),
                         unique_jpeg(folder / f"B{i:05d}.JPG", f"burst{i}")]
            else:
                paths = [unique_jpeg(folder / f"B{i:05d}.JPG", f"burst{i}")]
            now = time.time()
            for p in paths:
                arrived[str(p)] = now
            originals.add_many(paths)
            written += len(paths)
            # Hold 10 files/s on average, however long each write took.
            time.sleep(max(0.0, t0 + written / rate - time.monotonic()))
        feed_seconds = time.monotonic() - t0
        photos = sum(1 for p in originals.files if p.endswith(".JPG"))
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") >= photos
               and d.count("SELECT count(*) FROM inbox") == 0
               # A late RAW follows its filed JPEG after the photo is done.
               and not files(d.inbox, symlinks=False), timeout=120 + total, what="the backlog to drain")
        drain_seconds = time.monotonic() - t0 - feed_seconds
        stop.set()
        sampler.join(5)
        # Stopped first: the last photo's sidecar is written just after it is
        # marked done, and a check racing that write would see its temp file.
        assert d.proc.poll() is None, "the daemon died during the burst"
        assert d.stop() == 0
        summary = d.check(originals, drained=True)
    finally:
        stop.set()
        d.close()

    dupes = d.query("SELECT original_path, count(*) FROM photos GROUP BY original_path HAVING count(*) > 1")
    assert not dupes, dupes
    assert d.count("SELECT count(*) FROM photos WHERE state != 'done'") == 0
    # Analysis really fell behind, and the backlog was in the database.
    assert backlog_max >= total // 10, f"no backlog built up (max queued {backlog_max}); the test proves nothing"
    rss = [kb for _, kb in samples]
    q = max(1, len(rss) // 4)
    first, last = max(rss[:q]), max(rss[-q:])
    latencies = sorted(t - arrived[p] for p, t in d.query(
        "SELECT original_path, updated_at FROM photos WHERE state = 'done'") if p in arrived)
    p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else None
    record_result("burst", files=total, photos=summary.get("db_done"), rate_per_s=rate,
                  feed_seconds=round(feed_seconds, 1), drain_seconds=round(drain_seconds, 1),
                  backlog_max=backlog_max, rss_first_quarter_mb=round(first / 1024, 1),
                  rss_last_quarter_mb=round(last / 1024, 1), rss_samples=len(rss),
                  latency_median_s=round(statistics.median(latencies), 1) if latencies else None,
                  latency_p95_s=round(p95, 1) if p95 is not None else None, losses=0)
    # Flat: a queue held in memory would grow with the backlog (hundreds of rows).
    assert last - first <= 12 * 1024, f"daemon RSS grew from {first} kB to {last} kB over the burst"


def _events_for(path: Path, rng: random.Random) -> list:
    p = str(path)
    evs = [FileCreatedEvent(p), FileOpenedEvent(p), FileClosedEvent(p)]
    evs += [FileModifiedEvent(p)] * rng.randint(1, 20)                      # a write storm
    evs += [FileModifiedEvent(os.fsencode(p))]                              # bytes path, as inotify gives
    tmp = str(path.parent / f"{path.stem}.tmp")
    evs += [FileMovedEvent(tmp, p), FileMovedEvent("", p)]                  # a rename, and one with no source
    return evs


def test_replayed_and_shuffled_events_make_exactly_one_photo_per_file(tmp_path, fresh_db, caplog):
    rng = random.Random(1234)
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    files: list[Path] = []
    for i in range(40):
        folder = inbox / f"sub{i % 4}"
        if i % 4 == 0:
            files += [unique_raw(folder / f"P{i:03d}.ARW", f"ev{i}", base="KodakDC120_P003913.KDC"),
                      unique_jpeg(folder / f"P{i:03d}.JPG", f"ev{i}")]
        else:
            files.append(unique_jpeg(folder / f"P{i:03d}.JPG", f"ev{i}"))
    events = []
    for f in files:
        for _ in range(rng.randint(2, 5)):
            events += _events_for(f, rng)
    events += [DirCreatedEvent(str(inbox / f"sub{i}")) for i in range(4)] * 3
    rng.shuffle(events)

    scans: list[str] = []
    handler = watcher.InboxHandler(inbox, library, lambda p: settle.record(fresh_db, p), scans.append)
    for e in events:
        handler.on_any_event(e)
    for folder in scans:                       # the service runs each requested scan
        scan.rescan(fresh_db, list(watcher.walk(Path(folder), library)), copy_mode=False)
    assert "could not be recorded" not in caplog.text

    now = time.time()
    settle.check(fresh_db, 1.0, now=now)                       # first sight: size and mtime noted
    ready, waiting = settle.check(fresh_db, 1.0, now=now + 5)
    assert waiting == 0 and len(ready) == len(files)
    pairing.admit(fresh_db, ready, copy_mode=False, now=now + 5)
    # Replays after admission must not queue anything again.
    for e in events[:200]:
        handler.on_any_event(e)
    scan.rescan(fresh_db, list(watcher.walk(inbox, library)), copy_mode=False)
    ready, _ = settle.check(fresh_db, 1.0, now=now + 10)
    ready, _ = settle.check(fresh_db, 1.0, now=now + 20)
    pairing.admit(fresh_db, ready, copy_mode=False, now=now + 20)

    rows = list(fresh_db.query("SELECT original_path, pair_original_path FROM photos"))
    named = [r["original_path"] for r in rows] + [r["pair_original_path"] for r in rows if r["pair_original_path"]]
    assert sorted(named) == sorted(str(f) for f in files)      # each file in exactly one photo, once
    assert len(rows) == 40
    assert fresh_db.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
