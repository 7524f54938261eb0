"""Start-up recovery finishes whatever a crash interrupted, from the state on disk."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from starsort import pipeline
from starsort.library.context import Library

from ..helpers import copy_fixture


@pytest.fixture
def svc(make_library) -> Library:
    return make_library(xmp={"enabled": False})


def _photo(svc, original: str, state: str, stars: int = 4) -> int:
    now = time.time()
    return svc.call(lambda db: db.execute(
        "INSERT INTO photos (original_path, kind, state, stars, queued_at, updated_at)"
        " VALUES (?, 'jpeg', ?, ?, ?, ?) RETURNING id", (original, state, stars, now, now)).fetchone()[0])


def _journal(svc, photo_id: int, src: Path, dst: Path, state: str) -> None:
    now = time.time()
    svc.call(lambda db: db.execute(
        "INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
        " VALUES (?, 'primary', ?, ?, 0, ?, ?, ?)", (photo_id, str(src), str(dst), state, now, now)))


def test_a_photo_whose_moves_finished_before_the_crash_is_marked_done(folders, svc):
    src = copy_fixture("ivan.jpg", folders["inbox"])
    dst = folders["library"] / "4-stars" / "ivan.jpg"
    dst.parent.mkdir(parents=True)
    src.rename(dst)                                    # the move happened ...
    _journal(svc, _photo(svc, str(src), "filing"), src, dst, "done")
    pipeline.recover(svc)                                      # ... but the photo row still said 'filing'
    row = svc.call(lambda db: db.execute("SELECT state, current_path FROM photos").fetchone())
    assert row == ("done", str(dst))


def test_a_link_made_just_before_the_crash_is_finished_and_the_source_removed(folders, svc):
    src = copy_fixture("ivan.jpg", folders["inbox"])
    dst = folders["library"] / "4-stars" / "ivan.jpg"
    dst.parent.mkdir(parents=True)
    os.link(src, dst)                                  # linked, journal still says 'planned'
    _journal(svc, _photo(svc, str(src), "filing"), src, dst, "planned")
    (dst.parent / ".starsort-deadbeef.tmp").write_bytes(b"half a copy")
    pipeline.recover(svc)
    assert not src.exists() and dst.exists()
    assert not (dst.parent / ".starsort-deadbeef.tmp").exists()
    assert svc.call(lambda db: db.execute("SELECT state FROM photos").fetchone()) == ("done",)


def test_a_photo_filed_nowhere_before_the_crash_goes_back_to_be_filed(folders, svc):
    src = copy_fixture("ivan.jpg", folders["inbox"])
    _photo(svc, str(src), "filing")
    pipeline.recover(svc)
    assert svc.call(lambda db: db.execute("SELECT state FROM photos").fetchone()) == ("analysed",)
    assert Path(src).exists()


def test_a_filing_cut_after_its_first_source_left_is_finished_not_taken_back(folders, svc, monkeypatch):
    import errno as errno_
    from starsort.library import fsops, journal
    raw = copy_fixture("two_people.ARW", folders["inbox"], "DSC00009.ARW")
    jpeg = copy_fixture("ivan.jpg", folders["inbox"], "DSC00009.JPG")
    sums = {p.suffix: fsops.sha256_file(p) for p in (raw, jpeg)}
    now = time.time()
    photo_id = svc.call(lambda db: db.execute(
        "INSERT INTO photos (original_path, pair_original_path, kind, state, stars, queued_at, updated_at)"
        " VALUES (?, ?, 'raw', 'analysed', 4, ?, ?) RETURNING id", (str(raw), str(jpeg), now, now)).fetchone()[0])
    svc.once = False
    real_fsync_dir = journal.fsync_dir

    def failing(path):
        if Path(path) == folders["inbox"]:
            raise OSError(errno_.EIO, "Input/output error")
        real_fsync_dir(path)
    monkeypatch.setattr(journal, "fsync_dir", failing)
    pipeline.file_and_rate(svc, photo_id)                      # the raw's source is unlinked, then the inbox fsync fails
    assert not raw.exists()
    assert svc.call(lambda db: db.execute("SELECT count(*) FROM moves WHERE photo_id = ?",
                                          (photo_id,)).fetchone()[0]) == 2, "the journal must remember the raw"
    monkeypatch.setattr(journal, "fsync_dir", real_fsync_dir)
    pipeline.file_and_rate(svc, photo_id)                      # the retry finishes the same filing
    state, current, pair = svc.call(lambda db: db.execute(
        "SELECT state, current_path, pair_path FROM photos WHERE id = ?", (photo_id,)).fetchone())
    assert state == "done"
    filed = sorted((folders["library"] / "4-stars").iterdir())
    assert [p.name for p in filed] == ["DSC00009.ARW", "DSC00009.JPG"]
    assert {p.suffix: fsops.sha256_file(p) for p in filed} == sums
    assert (current, pair) == tuple(str(p) for p in filed)
    assert list(folders["inbox"].iterdir()) == []


# ---- a crash inside a batch filing (pipeline.after_analysis_many) ---------------------------------

class _Crash(BaseException):
    """The process dies here: no handler of filing's catches it, as none survives a kill."""


@pytest.mark.parametrize("point", ["link:1", "link:4", "fsync_dir:1", "unlink_src:1", "unlink_src:3",
                                   "fsync_src_dir:1", "commit:3", "commit:6"])
def test_a_crash_at_any_step_of_a_batch_filing_is_finished_at_the_next_start(make_library, folders,
                                                                             monkeypatch, point):
    """Three photos (a RAW+JPEG pair, two JPEGs) filed together, the process killed at one step:
    after the restart's recovery and filing, every original is in the library exactly once."""
    from starsort import crashpoints
    from starsort.library import outcomes
    from starsort.store import photos

    from ..helpers import analysis_result, files, sha256
    lib = make_library()
    inbox = folders["inbox"]
    raw = copy_fixture("two_people.ARW", inbox, "DSC00001.ARW")
    jpeg = copy_fixture("ivan.jpg", inbox, "DSC00001.JPG")
    singles = [copy_fixture("clapton-2.jpg", inbox, "a.jpg"), copy_fixture("kit_with_rose.jpg", inbox, "b.jpg")]
    originals = sorted(sha256(p) for p in files(inbox))
    now = time.time()
    ids = [lib.call(lambda db: photos.queue(db, original=str(raw), pair=str(jpeg), kind="raw", size=None,
                                            mtime_ns=None, now=now))]
    ids += [lib.call(lambda db, s=s: photos.queue(db, original=str(s), pair=None, kind="jpeg", size=None,
                                                  mtime_ns=None, now=now)) for s in singles]
    step, n = point.split(":")
    seen = {"n": 0}

    def hit(name: str) -> None:
        if name == step:
            seen["n"] += 1
            if seen["n"] == int(n):
                raise _Crash(point)
    monkeypatch.setattr(crashpoints, "hit", hit)
    with pytest.raises(_Crash):
        pipeline.after_analysis_many(lib, [(i, analysis_result(i, 4, [50.0], phash=f"{i:016x}")) for i in ids])
    monkeypatch.undo()
    lib.writer.close()

    restarted = make_library()
    pipeline.recover(restarted)
    for photo_id in ids:                       # what the loop's dispatch then does
        if restarted.photo(photo_id)["state"] == "analysed":
            outcomes.file(restarted, photo_id)

    assert [restarted.photo(i)["state"] for i in ids] == ["done"] * 3
    assert files(inbox) == []
    assert sorted(sha256(p) for p in files(folders["library"]) if p.suffix != ".xmp") == originals
