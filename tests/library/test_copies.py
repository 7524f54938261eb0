"""A card imported twice: bytes already filed are recognised and set aside, never filed again or lost."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from starsort import pipeline
from starsort.library import copies, outcomes
from starsort.library.context import Library
from starsort.store import duplicates, photos, seen

from ..helpers import copy_fixture, sha256, tree


def _queued(lib: Library, original: Path, pair: Path | None = None) -> int:
    now = time.time()
    return lib.call(lambda db: photos.queue(db, original=str(original), pair=str(pair) if pair else None,
                                            kind="raw" if pair else "jpeg", size=original.stat().st_size,
                                            mtime_ns=original.stat().st_mtime_ns, now=now))


def _filed(lib: Library, original: Path, pair: Path | None = None, stars: int = 4) -> dict:
    photo_id = _queued(lib, original, pair)
    lib.call(lambda db: db.execute("UPDATE photos SET state = 'analysed', stars = ? WHERE id = ?", (stars, photo_id)))
    assert outcomes.file(lib, photo_id) == "done"
    return lib.photo(photo_id)


def _card(folders: dict, name: str, *fixtures: str) -> list[Path]:
    card = folders["inbox"] / name / "DCIM" / "100MSDCF"
    card.mkdir(parents=True)
    return [copy_fixture(f, card) for f in fixtures]


def test_a_photo_imported_again_goes_to_duplicates_in_move_mode_and_the_filed_one_is_untouched(lib, folders):
    [first] = _card(folders, "card1", "ivan.jpg")
    filed = _filed(lib, first)
    filed_digest = sha256(Path(filed["current_path"]))
    [again] = _card(folders, "card2", "ivan.jpg")
    photo_id = _queued(lib, again)

    assert pipeline.before_analysis(lib, lib.photo(photo_id)) is True

    row = lib.photo(photo_id)
    assert (row["state"], row["duplicate_of"]) == ("duplicate", filed["id"])
    assert Path(row["current_path"]) == folders["library"] / "duplicates" / "ivan.jpg"
    assert sha256(Path(row["current_path"])) == filed_digest          # moved, not deleted
    assert list(tree(folders["library"] / "4-stars")) == ["ivan.jpg"]      # not filed again as ivan_2.jpg
    assert sha256(Path(filed["current_path"])) == filed_digest


def test_a_photo_imported_again_in_copy_mode_is_left_where_it_is_and_not_queued_by_the_next_scan(
        make_library, folders):
    lib = make_library(mode="copy")
    [first] = _card(folders, "card1", "ivan.jpg")
    _filed(lib, first)
    [again] = _card(folders, "card2", "ivan.jpg")
    digest = sha256(again)
    photo_id = _queued(lib, again)

    assert pipeline.before_analysis(lib, lib.photo(photo_id)) is True

    row = lib.photo(photo_id)
    assert row["state"] == "duplicate" and row["current_path"] == str(again)
    assert sha256(again) == digest
    st = os.stat(again)
    assert lib.call(lambda db: seen.known(db, str(again), st.st_size, st.st_mtime_ns))
    assert list(tree(folders["library"] / "4-stars")) == ["ivan.jpg"]


def test_a_different_photo_of_the_same_size_is_filed_as_usual(lib, folders):
    [first] = _card(folders, "card1", "ivan.jpg")
    _filed(lib, first)
    [other] = _card(folders, "card2", "ivan.jpg")
    data = bytearray(other.read_bytes())
    data[len(data) // 2] ^= 0xFF                                      # same size, one byte differs
    other.write_bytes(bytes(data))
    photo_id = _queued(lib, other)

    assert pipeline.before_analysis(lib, lib.photo(photo_id)) is False
    assert lib.photo(photo_id)["state"] == "queued"


def test_a_raw_imported_again_with_a_new_jpeg_is_filed_because_the_jpeg_is_new(lib, folders):
    raw1 = copy_fixture("two_people.ARW", folders["inbox"], "DSC00001.ARW")
    filed = _filed(lib, raw1)
    assert filed["pair_path"] is None
    card = folders["inbox"] / "card2"
    card.mkdir()
    raw2 = copy_fixture("two_people.ARW", card, "DSC00001.ARW")
    jpeg2 = copy_fixture("ivan.jpg", card, "DSC00001.JPG")
    photo_id = _queued(lib, raw2, jpeg2)

    assert pipeline.before_analysis(lib, lib.photo(photo_id)) is False


def test_a_filed_photo_edited_since_is_no_longer_a_twin(lib, folders):
    [first] = _card(folders, "card1", "ivan.jpg")
    filed = _filed(lib, first)
    [again] = _card(folders, "card2", "ivan.jpg")
    photo_id = _queued(lib, again)
    assert copies.already_filed(lib, lib.photo(photo_id))["id"] == filed["id"]   # hashes stored now
    library_copy = Path(filed["current_path"])
    data = bytearray(library_copy.read_bytes())
    data[-3] ^= 0x01                     # a catalogue rewrote the filed JPEG in place, same size
    library_copy.write_bytes(bytes(data))

    assert copies.already_filed(lib, lib.photo(photo_id)) is None


def test_on_import_file_files_the_copy_again_under_a_name_of_its_own(make_library, folders):
    lib = make_library(duplicates={"on_import": "file"})
    [first] = _card(folders, "card1", "ivan.jpg")
    _filed(lib, first)
    [again] = _card(folders, "card2", "ivan.jpg")
    photo_id = _queued(lib, again)

    assert pipeline.before_analysis(lib, lib.photo(photo_id)) is False
    lib.call(lambda db: db.execute("UPDATE photos SET state = 'analysed', stars = 4 WHERE id = ?", (photo_id,)))
    assert outcomes.file(lib, photo_id) == "done"
    assert sorted(tree(folders["library"] / "4-stars")) == ["ivan.jpg", "ivan_2.jpg"]


def test_a_twin_filed_while_this_copy_was_analysed_is_caught_at_filing(lib, folders):
    [first] = _card(folders, "card1", "ivan.jpg")
    [again] = _card(folders, "card2", "ivan.jpg")
    one, two = _queued(lib, first), _queued(lib, again)
    for photo_id in (one, two):          # both dispatched before either was filed
        assert pipeline.before_analysis(lib, lib.photo(photo_id)) is False
        lib.call(lambda db: db.execute("UPDATE photos SET state = 'analysed', stars = 5 WHERE id = ?", (photo_id,)))

    assert outcomes.file(lib, one) == "done"
    assert outcomes.file(lib, two) == "duplicate"
    assert sorted(tree(folders["library"])) == ["5-stars/ivan.jpg", "duplicates/ivan.jpg"]


def test_filed_photos_moved_by_a_link_are_hashed_once_when_a_file_of_their_size_arrives(lib, folders,
                                                                                        monkeypatch):
    [first] = _card(folders, "card1", "ivan.jpg")
    filed = _filed(lib, first)
    assert filed["sha256"] is None               # a link reads nothing
    hashed: list[str] = []
    real = copies.sha256_file
    monkeypatch.setattr(copies, "sha256_file", lambda p: hashed.append(os.path.basename(p)) or real(p))
    for n in (2, 3):
        card = folders["inbox"] / f"card{n}"
        card.mkdir()
        other = card / "other.jpg"
        shutil.copyfile(filed["current_path"], other)
        data = bytearray(other.read_bytes())
        data[100 + n] ^= 0xFF
        other.write_bytes(bytes(data))
        assert copies.already_filed(lib, lib.photo(_queued(lib, other))) is None

    assert hashed == ["other.jpg", "ivan.jpg", "other.jpg"]          # the filed one once, not per arrival
    assert lib.photo(filed["id"])["sha256"] == sha256(Path(filed["current_path"]))


def test_exact_groups_put_a_filed_photo_with_its_skipped_copies_and_look_alikes_apart(lib, folders):
    [first] = _card(folders, "card1", "ivan.jpg")
    filed = _filed(lib, first)
    [again] = _card(folders, "card2", "ivan.jpg")
    photo_id = _queued(lib, again)
    pipeline.before_analysis(lib, lib.photo(photo_id))

    groups = lib.call(duplicates.exact_groups)
    assert [[p.id for p in g] for g in groups] == [[filed["id"], photo_id]]
    assert lib.call(duplicates.copy_of) == {photo_id: filed["current_path"]}
