"""Each way a photo's story ends is a function of the Library, callable without a running loop."""
from __future__ import annotations

import errno
import time
from pathlib import Path


from starsort import pipeline
from starsort.library import fsops, journal, outcomes
from starsort.library.context import Library
from starsort.store import photos

from ..helpers import EMPTY_SIDECAR, copy_fixture, files, read_xmp, sha256, tree


def _analysed(lib: Library, original: Path, pair: Path | None = None, stars: int | None = 4) -> int:
    now = time.time()
    photo_id = lib.call(lambda db: photos.queue(db, original=str(original), pair=str(pair) if pair else None,
                                                kind="raw" if pair else "jpeg", size=None, mtime_ns=None, now=now))
    lib.call(lambda db: db.execute("UPDATE photos SET state = 'analysed', stars = ? WHERE id = ?",
                                   (stars, photo_id)))
    return photo_id


def test_filing_moves_a_raw_jpeg_pair_and_its_sidecar_into_the_star_folder_together(lib, folders):
    raw = copy_fixture("two_people.ARW", folders["inbox"], "DSC00001.ARW")
    jpeg = copy_fixture("ivan.jpg", folders["inbox"], "DSC00001.JPG")
    (folders["inbox"] / "DSC00001.xmp").write_text(EMPTY_SIDECAR)
    before = tree(folders["inbox"])
    photo_id = _analysed(lib, raw, jpeg, stars=3)

    assert outcomes.file(lib, photo_id) == "done"

    star = folders["library"] / "3-stars"
    assert tree(star) == before
    assert list(folders["inbox"].iterdir()) == []
    row = lib.photo(photo_id)
    assert (row["state"], row["current_path"], row["pair_path"]) == ("done", str(star / "DSC00001.ARW"),
                                                                       str(star / "DSC00001.JPG"))


def test_quarantine_files_the_photo_into_quarantine_with_its_reason(lib, folders):
    bad = copy_fixture("ivan.jpg", folders["inbox"], "cut.jpg")
    digest = sha256(bad)
    photo_id = _analysed(lib, bad, stars=None)

    outcomes.quarantine(lib, photo_id, "truncated JPEG")

    row = lib.photo(photo_id)
    assert (row["state"], row["error"]) == ("quarantined", "truncated JPEG")
    assert sha256(Path(row["current_path"])) == digest
    assert Path(row["current_path"]).parent == folders["library"] / "quarantine"


def test_a_full_library_keeps_the_source_and_schedules_a_retry_when_the_service_runs(make_library, folders,
                                                                                      monkeypatch):
    lib = make_library(once=False)
    src = copy_fixture("ivan.jpg", folders["inbox"])
    digest = sha256(src)
    photo_id = _analysed(lib, src)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(journal, "place", full)

    assert outcomes.file(lib, photo_id) is None
    row = lib.photo(photo_id)
    assert row["state"] == "analysed" and "No space left" in row["error"]
    assert sha256(src) == digest and photo_id in lib.retry_at
    assert files(folders["library"]) == []


def test_a_photo_whose_file_was_taken_away_is_closed_as_vanished(lib, folders):
    src = copy_fixture("ivan.jpg", folders["inbox"])
    photo_id = _analysed(lib, src)
    src.unlink()

    assert outcomes.file(lib, photo_id) is None

    row = lib.photo(photo_id)
    assert row["state"] == "failed" and "disappeared" in row["error"]


def test_a_late_raw_follows_its_filed_jpeg_under_the_same_stem(lib, folders):
    jpeg = copy_fixture("ivan.jpg", folders["inbox"], "DSC00002.JPG")
    photo_id = _analysed(lib, jpeg, stars=5)
    pipeline.file_and_rate(lib, photo_id)
    raw = copy_fixture("two_people.ARW", folders["inbox"], "DSC00002.ARW")
    digest = sha256(raw)

    outcomes.follow(lib, lib.photo(photo_id), str(raw), "pair")

    filed = folders["library"] / "5-stars" / "DSC00002.ARW"
    assert sha256(filed) == digest and not raw.exists()
    assert lib.photo(photo_id)["pair_path"] == str(filed)
    assert (folders["library"] / "5-stars" / "DSC00002.xmp").exists()


def test_rate_in_place_leaves_the_photo_where_it_lies(make_library, folders):
    lib = make_library(mode="rate-in-place")
    src = copy_fixture("ivan.jpg", folders["inbox"])
    digest = sha256(src)
    photo_id = _analysed(lib, src, stars=2)

    pipeline.file_and_rate(lib, photo_id)

    row = lib.photo(photo_id)
    assert (row["state"], row["current_path"]) == ("done", str(src))
    assert sha256(src) == digest
    assert read_xmp(folders["inbox"] / "ivan.xmp")["Xmp.xmp.Rating"] == "2"


def test_a_copy_that_fails_verification_is_taken_back_and_the_photo_requeued_nowhere_filed(lib, folders,
                                                                                           monkeypatch):
    src = copy_fixture("ivan.jpg", folders["inbox"])
    photo_id = _analysed(lib, src)

    def changed(*a, **k):
        raise fsops.SourceChanged(f"{src} changed while it was being copied")
    monkeypatch.setattr(journal, "place", changed)

    outcomes.file(lib, photo_id)

    assert lib.photo(photo_id)["state"] == "queued"
    assert src.exists()
    assert lib.call(lambda db: db.execute("SELECT count(*) FROM moves").fetchone()[0]) == 0


def test_two_photos_from_different_folders_with_one_stem_get_stems_and_sidecars_of_their_own(lib, folders):
    raw = copy_fixture("two_people.ARW", folders["inbox"] / "DCIM" / "100MSDCF")
    jpeg = copy_fixture("ivan.jpg", folders["inbox"] / "portraits", "two_people.jpg")
    first, second = _analysed(lib, raw, stars=5), _analysed(lib, jpeg, stars=5)
    lib.call(lambda db: db.execute("UPDATE photos SET kind = 'raw' WHERE id = ?", (first,)))
    pipeline.file_and_rate(lib, first)
    pipeline.file_and_rate(lib, second)

    star = folders["library"] / "5-stars"
    assert sorted(p.name for p in star.iterdir()) == ["two_people.ARW", "two_people.xmp", "two_people_2.jpg",
                                                      "two_people_2.xmp"]
    assert lib.photo(second)["current_path"] == str(star / "two_people_2.jpg")
    assert read_xmp(star / "two_people.xmp")["Xmp.xmp.Rating"] == "5"
    assert read_xmp(star / "two_people_2.xmp")["Xmp.xmp.Rating"] == "5"
    assert lib.call(lambda db: db.execute("SELECT count(DISTINCT photo_id) FROM artifacts").fetchone()[0]) == 2


def test_a_quarantined_file_that_changes_afterwards_goes_back_to_be_looked_at_again(make_library, folders):
    lib = make_library(once=False)
    src = copy_fixture("ivan.jpg", folders["inbox"], "DSC5.JPG")
    whole = src.read_bytes()
    src.write_bytes(whole[: len(whole) // 2])
    photo_id = _analysed(lib, src, stars=None)
    outcomes.quarantine(lib, photo_id, "truncated JPEG")
    quarantined = Path(lib.photo(photo_id)["current_path"])
    assert outcomes.relook_quarantined(lib) == 0               # unchanged: it stays

    with open(quarantined, "ab") as f:                          # the stalled writer finishes the file
        f.write(whole[len(whole) // 2:])

    assert outcomes.relook_quarantined(lib) == 1
    assert src.read_bytes() == whole and not quarantined.exists()
    assert lib.photo(photo_id)["state"] == "undone"


def test_filing_removes_the_card_folders_it_emptied_but_never_one_that_was_empty_already(lib, folders):
    card = folders["inbox"] / "CARD1" / "DCIM" / "100MSDCF"
    src = copy_fixture("ivan.jpg", card, "DSC00010.JPG")
    (folders["inbox"] / "CARD1" / "DCIM" / "101MSDCF").mkdir()  # empty before starsort came
    (folders["inbox"] / "spare").mkdir()
    photo_id = _analysed(lib, src)

    pipeline.file_and_rate(lib, photo_id)

    assert not card.exists()
    assert (folders["inbox"] / "CARD1" / "DCIM" / "101MSDCF").is_dir() and (folders["inbox"] / "spare").is_dir()
    assert folders["inbox"].is_dir()


def test_a_tethering_session_folder_stays_when_its_last_frame_is_filed(lib, folders):
    session = folders["inbox"] / "tethered" / "session-1"
    pipeline.file_and_rate(lib, _analysed(lib, copy_fixture("ivan.jpg", session, "T0001.JPG")))
    assert session.is_dir() and list(session.iterdir()) == []


def test_a_folder_still_holding_another_photo_stays(lib, folders):
    card = folders["inbox"] / "DCIM" / "101MSDCF"
    first = copy_fixture("ivan.jpg", card, "DSC00011.JPG")
    copy_fixture("clapton-2.jpg", card, "DSC00012.JPG")
    pipeline.file_and_rate(lib, _analysed(lib, first))
    assert sorted(p.name for p in card.iterdir()) == ["DSC00012.JPG"]


def test_nothing_is_filed_into_a_library_whose_disk_is_not_mounted(make_library, folders, tmp_path, monkeypatch):
    from starsort import paths
    (tmp_path / "media" / "you").mkdir(parents=True)
    monkeypatch.setattr(paths, "MOUNT_ROOTS", (tmp_path / "media",))
    absent = tmp_path / "media" / "you" / "NAS" / "photos"
    lib = make_library(once=False, library=str(absent))
    src = copy_fixture("ivan.jpg", folders["inbox"])
    photo_id = _analysed(lib, src, stars=4)

    assert outcomes.file(lib, photo_id) is None

    assert not (tmp_path / "media" / "you" / "NAS").exists() and src.exists()
    assert "is its disk mounted" in lib.photo(photo_id)["error"] and photo_id in lib.retry_at


def test_a_changed_quarantined_file_whose_old_name_is_taken_stays_and_is_reported_once(make_library, folders):
    lib = make_library(once=False)
    src = copy_fixture("ivan.jpg", folders["inbox"], "DSC6.JPG")
    photo_id = _analysed(lib, src, stars=None)
    outcomes.quarantine(lib, photo_id, "truncated JPEG")
    quarantined = Path(lib.photo(photo_id)["current_path"])
    with open(quarantined, "ab") as f:
        f.write(b"more")
    copy_fixture("clapton-2.jpg", folders["inbox"], "DSC6.JPG")          # the name is taken again

    assert outcomes.relook_quarantined(lib) == 0
    assert outcomes.relook_quarantined(lib) == 0
    assert quarantined.exists() and lib.photo(photo_id)["state"] == "quarantined"
    time.sleep(0.2)                                                         # the events are written behind
    warnings = lib.call(lambda db: db.execute(
        "SELECT count(*) FROM events WHERE message LIKE '%cannot go back%'").fetchone()[0])
    assert warnings == 1


# ---- photos analysed together (outcomes.file_many, pipeline.after_analysis_many) -------------------

def _queued(lib: Library, src: Path, pair: Path | None = None) -> int:
    now = time.time()
    return lib.call(lambda db: photos.queue(db, original=str(src), pair=str(pair) if pair else None,
                                            kind="raw" if pair else "jpeg", size=None, mtime_ns=None, now=now))


def test_photos_analysed_together_are_stored_filed_and_rated_as_they_would_be_one_at_a_time(make_library,
                                                                                           folders):
    from ..helpers import TITLED_SIDECAR, analysis_result
    lib = make_library(xmp={"pick_label": "Pick"})
    inbox = folders["inbox"]
    raw = copy_fixture("two_people.ARW", inbox, "DSC00001.ARW")
    jpeg = copy_fixture("ivan.jpg", inbox, "DSC00001.JPG")
    (inbox / "DSC00001.xmp").write_text(TITLED_SIDECAR.format(title="first dance"))
    frames = [copy_fixture(n, inbox, f"burst{i}.jpg") for i, n in enumerate(("clapton-2.jpg", "kit_with_rose.jpg"))]
    soft = copy_fixture("ivan.jpg", inbox, "soft.jpg")
    before = {p.name: sha256(p) for p in files(inbox)}
    ids = [_queued(lib, raw, jpeg)] + [_queued(lib, f) for f in frames] + [_queued(lib, soft)]
    answers = [
        (ids[0], analysis_result(ids[0], 5, [60.0], phash="0000000000000000")),
        # Two frames of one burst (same hash, a second apart): the sharper is its pick.
        (ids[1], analysis_result(ids[1], 4, [30.0], phash="ffff0000ffff0000", captured="2026-11-22T15:00:00")),
        (ids[2], analysis_result(ids[2], 4, [45.0], phash="ffff0000ffff0000", captured="2026-11-22T15:00:01")),
        (ids[3], analysis_result(ids[3], 1, [2.0], phash="00ff00ff00ff00ff")),
    ]

    pipeline.after_analysis_many(lib, answers)

    rows = [lib.photo(i) for i in ids]
    assert [r["state"] for r in rows] == ["done"] * 4
    assert [Path(r["current_path"]).parent.name for r in rows] == ["5-stars", "4-stars", "4-stars", "1-star"]
    assert rows[1]["cluster_id"] == rows[2]["cluster_id"] is not None and rows[2]["is_pick"] == 1
    assert files(inbox) == []
    assert sorted(sha256(p) for p in files(folders["library"]) if p.suffix != ".xmp") == sorted(
        d for n, d in before.items() if not n.endswith(".xmp"))
    kept = read_xmp(Path(rows[0]["current_path"]).with_suffix(".xmp"))
    assert (kept["Xmp.xmp.Rating"], kept["Xmp.dc.title"]) == ("5", {'lang="x-default"': "first dance"})
    burst_pick = read_xmp(Path(rows[2]["current_path"]).with_suffix(".xmp"))
    assert (burst_pick["Xmp.xmp.Rating"], burst_pick.get("Xmp.xmp.Label")) == ("4", "Pick")
    assert "Xmp.xmp.Label" not in read_xmp(Path(rows[1]["current_path"]).with_suffix(".xmp"))


def test_a_photo_that_leaves_a_batch_is_filed_alone_under_the_next_free_name(lib, folders, monkeypatch):
    a = copy_fixture("ivan.jpg", folders["inbox"], "a.jpg")
    b = copy_fixture("clapton-2.jpg", folders["inbox"], "b.jpg")
    ids = [_analysed(lib, a), _analysed(lib, b)]
    taken = folders["library"] / "4-stars" / "b.jpg"
    real_place = journal.place

    def someone_else_first(src, dst, copy, sync_folder=True):
        if dst == str(taken) and not taken.exists():
            taken.write_bytes(b"another program's file")
        return real_place(src, dst, copy, sync_folder)
    monkeypatch.setattr(journal, "place", someone_else_first)

    assert outcomes.file_many(lib, ids) == {ids[0]: "done", ids[1]: "done"}
    assert lib.photo(ids[1])["current_path"] == str(folders["library"] / "4-stars" / "b_2.jpg")
    assert taken.read_bytes() == b"another program's file"
    assert files(folders["inbox"]) == []


def test_photos_that_are_not_first_filings_go_through_file_one_at_a_time(make_library, folders):
    lib = make_library(mode="rate-in-place")
    a = copy_fixture("ivan.jpg", folders["inbox"], "a.jpg")
    b = copy_fixture("clapton-2.jpg", folders["inbox"], "b.jpg")
    ids = [_analysed(lib, a), _analysed(lib, b)]

    assert outcomes.file_many(lib, ids) == {ids[0]: "done", ids[1]: "done"}
    assert [lib.photo(i)["current_path"] for i in ids] == [str(a), str(b)]   # rated where they lie
