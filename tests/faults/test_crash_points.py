"""F1, F17: kill the daemon right after every step of a move, restart it, and check nothing is lost.

SQLite's crash-at-the-Nth-operation method: a clean run
with STARSORT_CRASH_TRACE counts how often each step runs for this input;
then, for each step and each of its calls, a fresh copy of the input is run
with STARSORT_CRASH_AT=<step>:<n> (the daemon calls os._exit(137) right after
that call), the state the crash left is checked (nothing missing, no partial
final), the daemon is started again without the crash, and the checker must
find everything filed exactly once, the RAW+JPEG+XMP group together.

Short mode takes the first call of each step (the last too where a group can
be split), and two database commits; STARSORT_FAULTS_LONG=1 takes every call
of every step, every database commit included.

The analysis worker is the fast double (tests/faults/doubles.py): crash
points are all in intake, the journal and filing, which run unchanged. One
test below crashes mid-group with the real pipeline.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from ..helpers import DATA, files
from .checker import Originals
from .support import LONG, Daemon, record_result, sidecar, unique_jpeg, unique_raw

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

SAME_FS_STEPS = ["link", "fsync_dir", "unlink_src", "fsync_src_dir"]
SPLITTING = {"write", "link", "link_tmp", "unlink_src"}
CROSS_FS_STEPS = ["write", "fsync_file", "verify", "link_tmp", "fsync_dir", "unlink_tmp", "unlink_src",
                  "fsync_src_dir"]


def _inputs(inbox: Path) -> list[Path]:
    """A RAW+JPEG+XMP group in a card folder, a darktable-style sidecar on a second pair, and a lone JPEG."""
    card = inbox / "card" / "DCIM"
    return [unique_raw(card / "DSC00001.ARW", "g1"), unique_jpeg(card / "DSC00001.JPG", "g1"),
            sidecar(card / "DSC00001.xmp", "first dance"),
            unique_raw(card / "DSC00002.ARW", "g2"), unique_jpeg(card / "DSC00002.JPG", "g2"),
            sidecar(card / "DSC00002.ARW.xmp", "second dance"),
            unique_jpeg(inbox / "lone.jpg", "lone")]


def _trace(root: Path, library: Path, mode: str = "move") -> list[str]:
    d = Daemon(root, library=library, mode=mode)
    _inputs(d.inbox)
    trace = root / "trace"
    r = d.once(env={"STARSORT_CRASH_TRACE": str(trace)})
    assert r.returncode == 0, d.tail()
    return trace.read_text().split()


def _points(trace: list[str], steps: list[str]) -> list[tuple[str, int]]:
    counts = Counter(trace)
    points = []
    for step in steps:
        assert counts[step], f"the clean run never reached {step}: {counts}"
        # Short mode: the first call, and for the steps that can split a group
        # (a member placed or a source removed while others are not) the last.
        ns = range(1, counts[step] + 1) if LONG else sorted({1, counts[step]} if step in SPLITTING else {1})
        points += [(step, n) for n in ns]
    # Commits: numbered in the order the writer ran them. Short mode takes the
    # ones that record a filing step (right after one, or the plan right before the first).
    commit_no, after_fs, first_fs = 0, [], None
    for i, step in enumerate(trace):
        if step == "commit":
            commit_no += 1
            if i and trace[i - 1] != "commit":
                after_fs.append(commit_no)
        elif first_fs is None:
            first_fs = commit_no
    if LONG:
        points += [("commit", n) for n in range(1, commit_no + 1)]
    else:
        points += [("commit", n) for n in sorted({first_fs, after_fs[len(after_fs) // 2]})]
    return points


def _crash_and_recover(root: Path, library: Path, step: str, n: int, mode: str = "move") -> str | None:
    """One crash point; returns a description of what went wrong, or None."""
    d = Daemon(root, library=library, mode=mode)
    originals = Originals.snapshot(_inputs(d.inbox))
    r = d.once(env={"STARSORT_CRASH_AT": f"{step}:{n}"})
    if r.returncode == 0 and step == "commit":
        # How many commits a run makes depends on timing (each loop round's
        # settle check commits), so the last few may not be reached; the run
        # itself must still be sound.
        try:
            d.check(originals, drained=True, mode=mode)
        except AssertionError as e:
            return f"{step}:{n}: (not reached) {e}"
        shutil.rmtree(library, ignore_errors=True)
        return None
    if r.returncode != 137:
        return f"{step}:{n}: expected the crash (137), got exit {r.returncode}\n{d.tail(1500)}"
    try:
        d.check(originals, crashed=True, mode=mode)
    except AssertionError as e:
        return f"{step}:{n}: right after the crash: {e}"
    r = d.once()
    if r.returncode != 0:
        return f"{step}:{n}: the restart exited {r.returncode}\n{d.tail(2000)}"
    try:
        d.check(originals, drained=True, mode=mode)
    except AssertionError as e:
        return f"{step}:{n}: after the restart: {e}\n{d.tail(1500)}"
    # A passed point's files are no longer needed; the second filesystem is small.
    shutil.rmtree(library, ignore_errors=True)
    return None


def _run_all(tmp_path: Path, library_base: Path, steps: list[str], name: str, mode: str = "move",
             short: list[tuple[str, int]] | None = None) -> None:
    t0 = time.monotonic()
    trace = _trace(tmp_path / "trace", library_base / "trace", mode)
    points = _points(trace, steps) if LONG or short is None else short
    failures = [f for step, n in points
                if (f := _crash_and_recover(tmp_path / f"{step}-{n}", library_base / f"{step}-{n}", step, n, mode))]
    record_result(name, crash_points=len(points), failed=len(failures), files_checked=len(points) * 7,
                  losses=sum("LOST" in f for f in failures), seconds=round(time.monotonic() - t0, 1))
    assert not failures, f"{len(failures)} of {len(points)} crash points failed:\n\n" + "\n\n".join(failures)


def test_every_crash_point_on_one_filesystem(tmp_path):
    _run_all(tmp_path, tmp_path / "libraries", SAME_FS_STEPS, "crash points, same filesystem")


def test_crash_points_in_copy_mode(tmp_path):
    """Copy mode copies through a temp file even on one filesystem, and never unlinks a source.
    Short mode: three points inside a group's copy; long mode: every one."""
    _run_all(tmp_path, tmp_path / "libraries", [s for s in CROSS_FS_STEPS if s not in ("unlink_src", "fsync_src_dir")],
             "crash points, copy mode", mode="copy", short=[("link_tmp", 1), ("fsync_dir", 2), ("unlink_tmp", 3)])


def _other_filesystem(tmp_path: Path, tmpfs) -> Path | None:
    mnt = tmpfs(tmp_path / "mnt", "128m")
    if mnt is not None:
        return mnt.where
    # Without root: /dev/shm is a tmpfs of its own on most Linux systems.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev:
        d = shm / f"starsort-faults-{os.getpid()}-{tmp_path.name}"
        d.mkdir()
        return d
    return None


def test_every_crash_point_across_two_filesystems(tmp_path, tmpfs):
    other = _other_filesystem(tmp_path, tmpfs)
    if other is None:
        pytest.skip(f"no second filesystem: cannot mount a tmpfs ({tmpfs.why}) and /dev/shm is unusable")
    try:
        _run_all(tmp_path, other / "libraries", CROSS_FS_STEPS, "crash points, across filesystems")
    finally:
        if str(other).startswith("/dev/shm/"):
            shutil.rmtree(other, ignore_errors=True)


def test_a_crash_mid_group_with_the_real_pipeline(tmp_path):
    """The same crash, with torch and MTCNN rating the photos: one source of the group is gone."""
    d = Daemon(tmp_path, analyser=None, settle=0.5)
    card = d.inbox / "card"
    card.mkdir()
    shutil.copyfile(DATA / "two_people.ARW", card / "DSC00001.ARW")
    shutil.copyfile(DATA / "kit_with_rose.jpg", card / "DSC00001.JPG")
    sidecar(card / "DSC00001.xmp", "first dance")
    shutil.copyfile(DATA / "ivan.jpg", d.inbox / "ivan.jpg")
    originals = Originals.snapshot(files(d.inbox, symlinks=False))
    r = d.once(env={"STARSORT_CRASH_AT": "unlink_src:2"})
    assert r.returncode == 137, d.tail()
    d.check(originals, crashed=True)
    assert d.once().returncode == 0, d.tail()
    d.check(originals, drained=True)
    stars = d.query("SELECT stars FROM photos WHERE pair_original_path IS NOT NULL")
    assert stars and 1 <= stars[0][0] <= 5


@pytest.mark.parametrize("point", ["link:1", "fsync_dir:1", "unlink_src:1", "fsync_src_dir:1"] if LONG
                         else ["link:1", "unlink_src:1"])
def test_a_crash_while_a_late_raw_follows_its_filed_jpeg(tmp_path, point):
    """The JPEG was filed first; its RAW lands later and follows it. A crash mid-follow must end,
    after a restart, with the RAW next to its JPEG under the same stem, and the database knowing it."""
    d = Daemon(tmp_path)
    originals = Originals.snapshot([unique_jpeg(d.inbox / "DSC00042.JPG", "follow")])
    assert d.once().returncode == 0, d.tail()
    originals.add(unique_raw(d.inbox / "DSC00042.ARW", "follow", base="KodakDC120_P003913.KDC"))
    assert d.once(env={"STARSORT_CRASH_AT": point}).returncode == 137, d.tail()
    d.check(originals, crashed=True)
    assert d.once().returncode == 0, d.tail()
    d.check(originals, drained=True)
    [(pair_original, pair_path, current)] = d.query(
        "SELECT pair_original_path, pair_path, current_path FROM photos")
    assert pair_original == str(d.inbox / "DSC00042.ARW")
    assert pair_path == str(Path(current).with_suffix(".ARW")) and Path(pair_path).is_file()
