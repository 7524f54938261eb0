"""F2: SIGKILL the daemon at random moments while photos keep arriving, restart it, again and again.

A feeder thread keeps writing photos into the inbox the whole time: lone
JPEGs, RAW+JPEG pairs, pairs with an XMP sidecar, some in new subfolders, some
written in chunks under their final name (as a card reader does). The main
thread starts the daemon, kills it with SIGKILL after a random 50 ms - 3 s
(so kills land during start-up, recovery, scans, analysis and filing), checks
the state the kill left (nothing missing, no partial final in the library),
and starts it again. At the end one clean `run --once` must file everything,
exactly once, groups together, with no temp files and a sound database.

Short mode (make test): 8 cycles. STARSORT_FAULTS_LONG=1 (make faults): 120.

Most cycles use the fast analysis double (tests/faults/doubles.py): the
invariants under test are decided by intake, settle, the journal and filing,
which are the daemon's own code here; the analyser only picks which star
folder a photo goes to, and the double picks it from the photo's bytes so it
is stable across restarts. A torch worker takes ~6 s to start, so the real
pipeline would spend a hundred-cycle loop mostly loading models and rarely be
killed mid-filing. test_kill_loop_with_the_real_pipeline runs a few cycles
with torch and MTCNN, timed to land while real analysis and filing run.
"""
from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from ..helpers import DATA
from .checker import Originals
from .support import LONG, Daemon, record_result, sidecar, unique_jpeg, unique_raw

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

SMALL_RAW = "KodakDC120_P003913.KDC"


class Feeder(threading.Thread):
    """Writes photos into the inbox until stopped; every finished file goes into `originals`."""

    def __init__(self, inbox: Path, originals: Originals, rng: random.Random, interval: float = 0.25):
        super().__init__(daemon=True)
        self.inbox, self.originals, self.rng, self.interval = inbox, originals, rng, interval
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.n = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.one()
                self.halt.wait(self.rng.uniform(0.5, 1.5) * self.interval)
        except BaseException as e:  # surfaced by the test
            self.error = e

    def _add(self, paths: list[Path]) -> None:
        with self.lock:
            self.originals.add_many(paths)

    def one(self) -> None:
        self.n += 1
        n, rng = self.n, self.rng
        folder = self.inbox / f"shoot{n // 15}" if rng.random() < 0.7 else self.inbox
        stem = f"DSC{n:05d}"
        kind = rng.random()
        if kind < 0.45:
            self._add([unique_jpeg(folder / f"{stem}.JPG", f"kl{n}")])
        elif kind < 0.75:
            self._add([unique_raw(folder / f"{stem}.ARW", f"kl{n}", base=SMALL_RAW),
                       unique_jpeg(folder / f"{stem}.JPG", f"kl{n}")])
        elif kind < 0.9:
            files = [unique_raw(folder / f"{stem}.ARW", f"kl{n}", base=SMALL_RAW),
                     unique_jpeg(folder / f"{stem}.JPG", f"kl{n}")]
            name = f"{stem}.xmp" if rng.random() < 0.5 else f"{stem}.ARW.xmp"
            tmp = folder / f".{name}.writing"
            sidecar(tmp, f"shot {n}")
            tmp.rename(folder / name)
            self._add(files + [folder / name])
        else:
            # Written in place in chunks, the way a card reader or tethering tool writes.
            path = folder / f"{stem}.JPG"
            unique_jpeg(folder / f".{stem}.src", f"kl{n}")
            data = (folder / f".{stem}.src").read_bytes()
            (folder / f".{stem}.src").unlink()
            with open(path, "wb") as f:
                for i in range(4):
                    f.write(data[i * len(data) // 4:(i + 1) * len(data) // 4])
                    f.flush()
                    time.sleep(0.05)
            self._add([path])

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        if self.error:
            raise self.error


def _kill_loop(d: Daemon, cycles: int, rng: random.Random, delay: tuple[float, float], feed_interval: float,
               name: str, originals: Originals | None = None) -> dict:
    originals = originals if originals is not None else Originals()
    feeder = Feeder(d.inbox, originals, rng, feed_interval)
    t0 = time.monotonic()
    feeder.start()
    survived = 0
    try:
        for cycle in range(cycles):
            d.start()
            time.sleep(rng.uniform(*delay))
            if d.proc.poll() is not None:
                raise AssertionError(f"cycle {cycle}: the daemon died by itself ({d.proc.returncode})\n{d.tail()}")
            d.kill()
            with feeder.lock:
                try:
                    d.check(originals, crashed=True)
                except AssertionError as e:
                    raise AssertionError(f"cycle {cycle}, right after SIGKILL: {e}\n{d.tail()}") from None
            survived += 1
    finally:
        feeder.stop()
    r = d.once(timeout=900)
    assert r.returncode == 0, d.tail()
    summary = d.check(originals, drained=True)
    dupes = d.query("SELECT original_path, count(*) FROM photos WHERE state = 'done'"
                    " GROUP BY original_path HAVING count(*) > 1")
    assert not dupes, f"photos filed more than once: {dupes}"
    groups = len(originals.groups())
    assert d.count("SELECT count(*) FROM photos WHERE state = 'done' AND pair_original_path IS NOT NULL") == groups
    failed = d.query("SELECT original_path, state, error FROM photos WHERE state NOT IN ('done')")
    assert not failed, f"photos not filed: {failed}"
    figures = dict(cycles_survived=survived, files_checked=len(originals), groups=groups,
                   photos=summary.get("db_done", 0), losses=0, seconds=round(time.monotonic() - t0, 1))
    record_result(name, **figures)
    return figures


def test_kill_loop(tmp_path):
    cycles = 120 if LONG else 8
    seed = random.randrange(1 << 30)
    d = Daemon(tmp_path, settle=0.3, rescan=1.0)
    try:
        _kill_loop(d, cycles, random.Random(seed), (0.05, 3.0), 0.25, "kill loop")
    except AssertionError as e:
        raise AssertionError(f"seed {seed}: {e}") from None


def test_kill_loop_with_the_real_pipeline(tmp_path):
    """The real analysis worker: kills land 4-12 s after start, while torch rates photos and filing runs."""
    cycles = 10 if LONG else 2
    seed = random.randrange(1 << 30)
    d = Daemon(tmp_path, settle=0.3, rescan=1.0, analyser=None)
    # Real photos with faces ahead of the feeder's small ones, so analysis has work from the first second.
    for i, name in enumerate(["ivan.jpg", "kit_with_rose.jpg", "clapton-2.jpg", "multiface.jpg"]):
        shutil.copyfile(DATA / name, d.inbox / f"real{i}_{name}")
    try:
        rng = random.Random(seed)
        figures = _kill_loop(d, cycles, rng, (4.0, 12.0), 1.0, "kill loop, real pipeline",
                             Originals.snapshot(sorted(d.inbox.iterdir())))
    except AssertionError as e:
        raise AssertionError(f"seed {seed}: {e}") from None
    assert figures["cycles_survived"] == cycles
