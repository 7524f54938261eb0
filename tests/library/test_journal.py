"""Filing never loses or overwrites a file, whatever step a crash interrupts."""
from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from starsort.library import fsops, names
from starsort.library.fsops import SourceChanged, place
from starsort.library.journal import Filer
from starsort.library.names import Member

from ..helpers import EMPTY_SIDECAR, copy_fixture, files, sha256


def _photo(db, original: str, pair: str | None = None) -> int:
    now = time.time()
    return db.execute(
        "INSERT INTO photos (original_path, pair_original_path, kind, state, queued_at, updated_at)"
        " VALUES (?, ?, 'raw', 'analysed', ?, ?) RETURNING id", (original, pair, now, now)).fetchone()[0]


def _group(inbox: Path) -> list[Member]:
    raw = copy_fixture("two_people.ARW", inbox, "DSC00001.ARW")
    jpg = copy_fixture("ivan.jpg", inbox, "DSC00001.JPG")
    xmp = inbox / "DSC00001.xmp"
    xmp.write_text(EMPTY_SIDECAR)
    return [Member("primary", str(raw)), Member("pair", str(jpg)), Member("sidecar", str(xmp))]


def test_a_move_on_one_filesystem_leaves_one_identical_copy_in_the_star_folder(fresh_db, folders):
    members = _group(folders["inbox"])
    hashes = {Path(m.src).name: sha256(Path(m.src)) for m in members}
    photo = _photo(fresh_db, members[0].src, members[1].src)
    dest = folders["library"] / "4-stars"
    placed = Filer(lambda fn: fn(fresh_db), folders["library"]).file(photo, members, dest, copy=False)
    assert sorted(os.path.basename(p) for p in placed.values()) == ["DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"]
    for name, h in hashes.items():
        assert sha256(dest / name) == h
        assert not (folders["inbox"] / name).exists()
    assert {r["state"] for r in fresh_db.query("SELECT state FROM moves")} == {"done"}


def test_copy_mode_keeps_the_originals_in_the_inbox(fresh_db, folders):
    members = _group(folders["inbox"])
    photo = _photo(fresh_db, members[0].src)
    dest = folders["library"] / "3-stars"
    Filer(lambda fn: fn(fresh_db), folders["library"]).file(photo, members, dest, copy=True)
    for m in members:
        src = Path(m.src)
        assert src.exists()
        assert sha256(dest / src.name) == sha256(src)
        assert os.stat(dest / src.name).st_ino != os.stat(src).st_ino


def test_a_taken_name_gives_the_whole_group_a_new_stem_and_overwrites_nothing(fresh_db, folders):
    dest = folders["library"] / "5-stars"
    dest.mkdir()
    (dest / "DSC00001.JPG").write_bytes(b"someone else's photo")
    members = _group(folders["inbox"])
    photo = _photo(fresh_db, members[0].src)
    placed = Filer(lambda fn: fn(fresh_db), folders["library"]).file(photo, members, dest, copy=False)
    assert (dest / "DSC00001.JPG").read_bytes() == b"someone else's photo"
    assert sorted(os.path.basename(p) for p in placed.values()) == [
        "DSC00001_2.ARW", "DSC00001_2.JPG", "DSC00001_2.xmp"]


def test_darktable_style_sidecars_keep_their_double_extension(folders):
    inbox = folders["inbox"]
    for n in ("IMG_1.ARW", "IMG_1.ARW.xmp", "IMG_1.xmp", "IMG_10.ARW.xmp"):
        (inbox / n).write_bytes(b"x")
    found = [os.path.basename(p) for p in names.find_sidecars([str(inbox / "IMG_1.ARW")])]
    assert found == ["IMG_1.ARW.xmp", "IMG_1.xmp"]
    m = Member("sidecar", str(inbox / "IMG_1.ARW.xmp"))
    assert names.dest_name(m, "IMG_1", "IMG_1_2") == "IMG_1_2.ARW.xmp"


def test_across_filesystems_the_copy_is_verified_before_the_source_goes(fresh_db, folders, monkeypatch):
    real_link = os.link

    def no_cross_device_link(src, dst, *a, **k):
        if not os.path.basename(src).startswith(names.TEMP_PREFIX):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(os, "link", no_cross_device_link)
    members = _group(folders["inbox"])
    hashes = {Path(m.src).name: sha256(Path(m.src)) for m in members}
    photo = _photo(fresh_db, members[0].src)
    dest = folders["library"] / "2-stars"
    Filer(lambda fn: fn(fresh_db), folders["library"]).file(photo, members, dest, copy=False)
    for name, h in hashes.items():
        assert sha256(dest / name) == h
    assert not any(p.name.startswith(names.TEMP_PREFIX) for p in dest.iterdir())
    assert not any(folders["inbox"].iterdir())
    assert {r["sha256"] for r in fresh_db.query("SELECT sha256 FROM moves")} == set(hashes.values())


def test_a_copy_that_reads_back_different_keeps_the_source(fresh_db, folders, monkeypatch):
    monkeypatch.setattr(os, "link", _raise(errno.EXDEV))
    src = copy_fixture("ivan.jpg", folders["inbox"])
    before = sha256(src)
    real = fsops.sha256_file
    monkeypatch.setattr(fsops, "sha256_file", lambda p: "0" * 64 if names.TEMP_PREFIX in str(p) else real(p))
    photo = _photo(fresh_db, str(src))
    with pytest.raises(OSError, match="does not read back identical"):
        Filer(lambda fn: fn(fresh_db), folders["library"]).file(
            photo, [Member("primary", str(src))], folders["library"] / "1-star", copy=False)
    assert sha256(src) == before
    assert [p.name for p in files(folders["library"])] == []


def _raise(err: int):
    def f(*a, **k):
        raise OSError(err, os.strerror(err))
    return f


class Crash(BaseException):
    """Stands in for kill -9: nothing after it runs, not even except-blocks for Exception."""


@pytest.mark.parametrize("cross_device", [False, True], ids=["same-fs", "cross-fs"])
def test_a_crash_at_any_filesystem_step_is_finished_at_start_up_with_nothing_lost(
        fresh_db, folders, monkeypatch, cross_device):
    # Crash at the 1st, 2nd, ... filesystem call until a run gets through; after
    # each crash, recovery (a fresh Filer's complete()) must converge.
    step = 0
    while True:
        step += 1
        inbox = folders["root"] / f"in{step}"
        library = folders["root"] / f"lib{step}"
        members = _group(inbox)
        hashes = {sha256(Path(m.src)) for m in members}
        photo = _photo(fresh_db, members[0].src)
        calls = {"n": 0}
        real = {name: getattr(os, name) for name in ("link", "unlink", "fsync", "rename")}

        def counted(name):
            def f(*a, **k):
                if name == "link" and cross_device and not os.path.basename(a[0]).startswith(names.TEMP_PREFIX):
                    raise OSError(errno.EXDEV, "Invalid cross-device link")
                calls["n"] += 1
                if calls["n"] == step:
                    raise Crash(name)
                return real[name](*a, **k)
            return f

        for name in real:
            monkeypatch.setattr(os, name, counted(name))
        crashed = False
        try:
            Filer(lambda fn: fn(fresh_db), library).file(photo, members, library / "4-stars", copy=False)
        except Crash:
            crashed = True
        for name, fn in real.items():
            monkeypatch.setattr(os, name, fn)

        # Whatever the moment, every original's bytes exist in full somewhere.
        present = {sha256(p) for p in files(inbox) + files(library) if not p.name.startswith(".")}
        assert hashes <= present, f"data lost after a crash at step {step}"

        if crashed:
            recovering = Filer(lambda fn: fn(fresh_db), library)
            recovering.sweep_temp_files()
            for pid in recovering.unfinished():
                recovering.complete(pid)
        filed = files(library)
        assert sorted(sha256(p) for p in filed) == sorted(hashes), f"step {step}: not filed exactly once"
        assert files(inbox) == []
        assert {p.parent.name for p in filed} == {"4-stars"}
        if not crashed:
            break
    assert step > 6  # the loop really did crash at every step of a group move


def test_a_source_swapped_for_a_symlink_is_not_filed_and_its_target_is_untouched(tmp_path):
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not a photo")
    src = tmp_path / "inbox" / "DSC00001.JPG"
    src.parent.mkdir()
    src.symlink_to(secret)
    for copy in (False, True):
        with pytest.raises(SourceChanged):
            place(str(src), str(tmp_path / "library" / f"DSC00001_{int(copy)}.JPG"), copy)
    assert not (tmp_path / "library").exists() or not any((tmp_path / "library").iterdir())
    assert secret.read_text() == "not a photo" and src.is_symlink()


def test_sidecars_are_found_by_name_in_both_styles_and_cases_without_listing_the_folder(folders, monkeypatch):
    inbox = folders["inbox"]
    for n in ("DSC1.ARW", "DSC1.XMP", "DSC1.ARW.xmp", "DSC10.xmp", "dsc2.arw", "DSC2.xmp"):
        (inbox / n).write_bytes(b"x")
    (inbox / "DSC3.ARW").write_bytes(b"x")
    (inbox / "DSC3.xmp").mkdir()            # not a regular file: never a sidecar

    def no_listing(path):
        raise AssertionError(f"listed {path}")

    monkeypatch.setattr(os, "scandir", no_listing)
    monkeypatch.setattr(os, "listdir", no_listing)
    assert [os.path.basename(p) for p in names.find_sidecars([str(inbox / "DSC1.ARW")])] == [
        "DSC1.ARW.xmp", "DSC1.XMP"]
    assert [os.path.basename(p) for p in names.find_sidecars([str(inbox / "dsc2.arw")])] == ["DSC2.xmp"]
    assert names.find_sidecars([str(inbox / "DSC3.ARW")]) == []


def test_the_journal_is_on_disk_before_a_file_enters_the_library_and_before_a_source_leaves(folders, monkeypatch):
    from starsort.store import db as store_db
    db = store_db.connect(folders["library"].parent / "state.db")
    store_db.migrate(db)
    members = _group(folders["inbox"])
    photo = _photo(db, members[0].src, members[1].src)
    events: list[str] = []
    real_link, real_unlink = os.link, os.unlink
    inbox = str(folders["inbox"])

    def link(src, dst, *a, **k):
        events.append(f"LINK {dst}")
        return real_link(src, dst, *a, **k)

    def unlink(path, *a, **k):
        if str(path).startswith(inbox):
            events.append(f"UNLINK {path}")
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "unlink", unlink)
    db.conn.set_trace_callback(events.append)
    Filer(lambda fn: fn(db), folders["library"]).file(photo, members, folders["library"] / "4-stars", copy=False)
    db.conn.set_trace_callback(None)

    def durable_before(first: str, statement: str) -> None:
        at = next(i for i, e in enumerate(events) if e.startswith(first))
        commit = max(i for i in range(at) if events[i] == "COMMIT" or events[i].startswith("UPDATE moves"))
        sync = [e for e in events[:commit] if e.startswith("PRAGMA synchronous")][-1]
        assert sync == "PRAGMA synchronous = FULL", (first, events[:at])
        assert any(statement in e for e in events[:commit + 1]), (statement, events[:at])

    durable_before("LINK", "INSERT INTO moves")
    durable_before("UNLINK", "state = 'placed'")
    # Everything else commits without an fsync of its own.
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert {r["state"] for r in db.query("SELECT state FROM moves")} == {"done"}
    db.conn.close()


def test_filing_a_photo_reads_its_own_journal_rows_by_index_not_every_move_ever_made(fresh_db, folders):
    members = _group(folders["inbox"])
    photo = _photo(fresh_db, members[0].src, members[1].src)
    issued: list[str] = []
    fresh_db.conn.set_trace_callback(issued.append)
    Filer(lambda fn: fn(fresh_db), folders["library"]).file(photo, members, folders["library"] / "4-stars", copy=False)
    fresh_db.conn.set_trace_callback(None)
    reads = [s for s in issued if "FROM moves" in s]
    assert reads
    for statement in reads:
        plan = " ".join(r[3] for r in fresh_db.execute("EXPLAIN QUERY PLAN " + statement).fetchall())
        assert "SCAN moves" not in plan, (statement, plan)


# ---- several photos at once (Filer.file_many) -----------------------------------------------------

def _three(inbox: Path, db) -> list[tuple[int, list[Member]]]:
    """A RAW+JPEG+XMP photo and two lone JPEGs, queued."""
    pair = _group(inbox)
    out = [(_photo(db, pair[0].src, pair[1].src), pair)]
    for name in ("a.jpg", "b.jpg"):
        src = copy_fixture("clapton-2.jpg" if name == "a.jpg" else "kit_with_rose.jpg", inbox, name)
        out.append((_photo(db, str(src)), [Member("primary", str(src))]))
    return out


def test_filing_several_photos_at_once_files_each_whole_with_one_fsync_per_folder(fresh_db, folders, monkeypatch):
    from starsort.library import journal
    photos_ = _three(folders["inbox"], fresh_db)
    hashes = {os.path.basename(m.src): sha256(m.src) for _, ms in photos_ for m in ms}
    synced: list[str] = []
    real_fsync = journal.fsync_dir
    monkeypatch.setattr(journal, "fsync_dir", lambda p: (synced.append(str(p)), real_fsync(p)))
    dest = folders["library"] / "4-stars"

    filed, left = Filer(lambda fn: fn(fresh_db), folders["library"]).file_many(
        [(pid, ms, dest) for pid, ms in photos_], copy=False)

    assert left == [] and sorted(filed) == sorted(pid for pid, _ in photos_)
    assert {os.path.basename(p): sha256(p) for f in filed.values() for p in f.values()} == hashes
    assert files(folders["inbox"]) == []
    # One fsync of the star folder for the five links, one of the inbox for the five unlinks.
    assert sorted(synced) == sorted([str(dest), str(folders["inbox"])])
    states = fresh_db.execute("SELECT state, COUNT(*) FROM moves GROUP BY state").fetchall()
    assert states == [("placed", 5)]      # the caller records the ends (outcomes.file_many)


def test_a_photo_whose_name_is_taken_during_a_batch_leaves_it_with_its_source_intact(fresh_db, folders, monkeypatch):
    from starsort.library import journal
    photos_ = _three(folders["inbox"], fresh_db)
    dest = folders["library"] / "4-stars"
    taken = dest / "a.jpg"
    real_place = journal.place

    def place_after_someone_else(src, dst, copy, sync_folder=True):
        if dst == str(taken):
            taken.write_bytes(b"another program's file")
        return real_place(src, dst, copy, sync_folder)
    monkeypatch.setattr(journal, "place", place_after_someone_else)
    a_id = photos_[1][0]
    digest = sha256(photos_[1][1][0].src)

    filed, left = Filer(lambda fn: fn(fresh_db), folders["library"]).file_many(
        [(pid, ms, dest) for pid, ms in photos_], copy=False)

    assert left == [a_id] and a_id not in filed and len(filed) == 2
    assert sha256(photos_[1][1][0].src) == digest                  # still in the inbox, whole
    assert taken.read_bytes() == b"another program's file"         # never overwritten
    assert fresh_db.execute("SELECT COUNT(*) FROM moves WHERE photo_id = ?", [a_id]).fetchone() == (0,)


def test_a_source_that_changed_after_its_link_leaves_the_batch_to_be_finished_alone(fresh_db, folders, monkeypatch):
    from starsort.library import journal
    photos_ = _three(folders["inbox"], fresh_db)
    dest = folders["library"] / "4-stars"
    b_id, b = photos_[2][0], photos_[2][1][0].src
    real_holds = journal.holds_source
    monkeypatch.setattr(journal, "holds_source", lambda src, dst, sha: src != b and real_holds(src, dst, sha))

    filer = Filer(lambda fn: fn(fresh_db), folders["library"])
    filed, left = filer.file_many([(pid, ms, dest) for pid, ms in photos_], copy=False)

    assert left == [b_id] and b_id not in filed
    assert os.path.exists(b)                                       # not unlinked
    assert fresh_db.execute("SELECT state FROM moves WHERE photo_id = ?", [b_id]).fetchall() == [("placed",)]
    with pytest.raises(SourceChanged):                             # alone, it is refused the same way
        filer.complete(b_id)


def test_a_folder_that_cannot_be_fsynced_sends_its_photos_back_with_every_source_in_the_inbox(fresh_db, folders,
                                                                                             monkeypatch):
    from starsort.library import journal
    photos_ = _three(folders["inbox"], fresh_db)
    before = {m.src: sha256(m.src) for _, ms in photos_ for m in ms}
    dest = folders["library"] / "4-stars"
    real_fsync = journal.fsync_dir

    def eio(path):
        if str(path) == str(dest):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(path)
    monkeypatch.setattr(journal, "fsync_dir", eio)

    filed, left = Filer(lambda fn: fn(fresh_db), folders["library"]).file_many(
        [(pid, ms, dest) for pid, ms in photos_], copy=False)

    assert filed == {} and sorted(left) == sorted(pid for pid, _ in photos_)
    assert {src: sha256(src) for src in before} == before          # every source still in the inbox
    assert files(dest) == []                                       # and its links taken back
    assert fresh_db.execute("SELECT COUNT(*) FROM moves").fetchone() == (0,)


def test_a_folder_listed_for_a_batch_finds_every_stem_its_probes_find(folders):
    star = folders["library"] / "4-stars"
    star.mkdir()
    for name in ("DSC1.ARW", "DSC2.jpg", "DSC3.JPG.xmp", "DSC4.xmp", "DSC5.arw.XMP", "DSC6", "notes.txt",
                 "DSC7.JPG.bak"):
        (star / name).write_bytes(b"x")
    listed = names.StemsInUse(star, photos=10)
    assert listed.stems is not None                     # a small folder: one listing beats 10 photos' probes
    for stem in ("DSC1", "DSC2", "DSC3", "DSC3.JPG", "DSC4", "DSC5", "DSC6", "DSC7", "DSC8", "notes",
                 "DSC7.JPG", "DSC7.JPG.bak"):
        assert listed(star, stem) == names.stem_in_use(star, stem), stem


def test_a_batch_into_a_large_folder_probes_names_instead_of_listing_it(folders, monkeypatch):
    star = folders["library"] / "4-stars"
    star.mkdir()
    for i in range(3000):
        (star / f"IMG_{i:05d}.JPG").touch()
    listings = []
    monkeypatch.setattr(names.os, "listdir", lambda p: listings.append(p) or [])
    one = names.StemsInUse(star, photos=1)
    assert one.stems is None and listings == []
    assert one(star, "IMG_00042") and not one(star, "IMG_09999")
