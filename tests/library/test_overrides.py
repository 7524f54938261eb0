"""The photographer overrules the machine: each override moves the whole photo through the journal,
rewrites its rating, and is never changed again by anything automatic."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from starsort import pipeline
from starsort.library import overrides, rerate, undo
from starsort.store import decisions, photos

from ..helpers import FOREIGN_SIDECAR, copy_fixture, filed, files, read_xmp, sha256, tree


def photo(lib, folders, *args, **kw) -> int:
    """A filed photo that came with the photographer's own sidecar (darktable's and Lightroom's fields)."""
    kw.setdefault("sidecar", FOREIGN_SIDECAR)
    return filed(lib, folders, *args, **kw)


def rating(path: str | Path) -> str | None:
    return read_xmp(Path(path).with_suffix(".xmp")).get("Xmp.xmp.Rating")


def test_setting_2_stars_moves_the_pair_and_its_sidecar_into_2_stars_and_rewrites_the_rating(lib, folders):
    photo_id = photo(lib, folders)
    five = folders["library"] / "5-stars"
    before = {n: sha256(five / n) for n in ("DSC00001.ARW", "DSC00001.JPG")}

    overrides.set_stars(lib, photo_id, 2)

    two = folders["library"] / "2-stars"
    assert sorted(p.name for p in two.iterdir()) == ["DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"]
    assert list(five.iterdir()) == []
    assert {n: sha256(two / n) for n in before} == before                  # the same bytes, moved
    xmp = read_xmp(two / "DSC00001.xmp")
    assert xmp["Xmp.xmp.Rating"] == "2"
    assert xmp["Xmp.dc.subject"] == ["holiday", "Ærø"]                     # the photographer's own fields stay
    row = lib.photo(photo_id)
    assert (row["stars"], row["machine_stars"], row["decided_by"]) == (2, 5, "photographer")
    assert (row["current_path"], row["pair_path"]) == (str(two / "DSC00001.ARW"), str(two / "DSC00001.JPG"))


def test_a_reject_goes_to_rejected_with_rating_minus_1_and_nothing_is_deleted(lib, folders):
    photo_id = photo(lib, folders)
    n_files = len(files(folders["library"]))

    overrides.reject(lib, photo_id)

    rejected = folders["library"] / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == ["DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"]
    assert rating(rejected / "DSC00001.ARW") == "-1"
    assert len(files(folders["library"])) == n_files
    assert lib.photo(photo_id)["rejected"] == 1


def test_undo_last_puts_the_newest_decision_back_where_it_was(lib, folders):
    photo_id = photo(lib, folders)
    overrides.set_stars(lib, photo_id, 3)
    overrides.reject(lib, photo_id)

    overrides.undo_last(lib)
    row = lib.photo(photo_id)
    assert (row["stars"], row["rejected"], row["decided_by"]) == (3, 0, "photographer")
    assert Path(row["current_path"]).parent.name == "3-stars" and rating(row["current_path"]) == "3"

    overrides.undo_last(lib)
    row = lib.photo(photo_id)
    assert (row["stars"], row["decided_by"]) == (5, "machine")
    assert Path(row["current_path"]).parent.name == "5-stars" and rating(row["current_path"]) == "5"
    assert overrides.undo_last(lib) is None


def test_back_to_the_machine_restores_its_stars_and_lets_automatic_rating_in_again(lib, folders):
    photo_id = photo(lib, folders, stars=4, scores=[12.0])
    overrides.set_stars(lib, photo_id, 1)

    overrides.to_machine(lib, photo_id)

    row = lib.photo(photo_id)
    assert (row["stars"], row["decided_by"], row["rejected"]) == (4, "machine", 0)
    assert Path(row["current_path"]).parent.name == "4-stars"


def test_an_override_of_a_photo_that_is_not_filed_is_refused_and_nothing_moves(lib, folders):
    src = copy_fixture("ivan.jpg", folders["inbox"])
    now = time.time()
    photo_id = lib.call(lambda db: photos.queue(db, original=str(src), pair=None, kind="jpeg", size=None,
                                                mtime_ns=None, now=now))
    with pytest.raises(overrides.Refused, match="queued"):
        overrides.set_stars(lib, photo_id, 2)
    with pytest.raises(overrides.Refused, match="no photo"):
        overrides.reject(lib, 9999)
    assert src.exists() and files(folders["library"]) == []


def test_a_move_that_cannot_happen_takes_the_decision_back(lib, folders, monkeypatch):
    photo_id = photo(lib, folders)
    from starsort.library import journal

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(journal, "place", full)

    with pytest.raises(overrides.Refused):
        overrides.set_stars(lib, photo_id, 2)
    row = lib.photo(photo_id)
    assert (row["state"], row["stars"], row["decided_by"]) == ("done", 5, "machine")
    assert Path(row["current_path"]).exists() and Path(row["current_path"]).parent.name == "5-stars"
    assert lib.call(decisions.last) is None


def test_an_undo_whose_move_cannot_happen_is_refused_and_leaves_the_decision_to_undo_again(lib, folders, monkeypatch):
    photo_id = photo(lib, folders)
    overrides.set_stars(lib, photo_id, 2)
    from starsort.library import journal
    place = journal.place

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(journal, "place", full)

    with pytest.raises(overrides.Refused):
        overrides.undo_last(lib)
    # What the database says is where the files are: still the photographer's 2 stars.
    row = lib.photo(photo_id)
    assert (row["stars"], row["decided_by"]) == (2, "photographer")
    assert Path(row["current_path"]).exists() and Path(row["current_path"]).parent.name == "2-stars"
    assert rating(row["current_path"]) == "2"
    assert overrides.misplaced(lib) == []

    # Space again: the same Ctrl+Z now puts the machine's 5 stars back.
    monkeypatch.setattr(journal, "place", place)
    assert overrides.undo_last(lib) is not None
    row = lib.photo(photo_id)
    assert (row["stars"], row["decided_by"]) == (5, "machine")
    assert Path(row["current_path"]).parent.name == "5-stars" and rating(row["current_path"]) == "5"


def test_undo_all_takes_an_overruled_photo_from_its_new_folder_back_to_the_inbox(lib, folders):
    photo_id = photo(lib, folders)
    inbox_before = {"DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"}
    overrides.set_stars(lib, photo_id, 2)
    overrides.reject(lib, photo_id)
    # One journal row per file, inbox -> where it is now.
    moves = lib.call(lambda db: list(db.query("SELECT src, dst FROM moves WHERE photo_id = ?", [photo_id])))
    assert len(moves) == 3 and all(Path(m["dst"]).parent.name == "rejected" for m in moves)

    res = lib.call(lambda db: undo.undo(db))

    assert res.restored and not res.skipped
    assert {p.name for p in folders["inbox"].iterdir()} == inbox_before
    assert read_xmp(folders["inbox"] / "DSC00001.xmp").get("Xmp.xmp.Rating") == "1"   # its own bytes again
    assert files(folders["library"]) == []


def test_a_photographers_pick_stays_when_a_sharper_frame_of_the_burst_lands(lib, folders):
    first = photo(lib, folders, "DSC00001", pair=False, scores=[40.0], sidecar=None)
    second = photo(lib, folders, "DSC00002", pair=False, scores=[60.0], sidecar=None,
                   captured="2026-11-22T14:00:01")
    assert lib.photo(second)["is_pick"] == 1 and lib.photo(first)["cluster_id"] == lib.photo(second)["cluster_id"]

    overrides.pick(lib, first)
    third = photo(lib, folders, "DSC00003", pair=False, scores=[90.0], sidecar=None,
                  captured="2026-11-22T14:00:02")

    assert [lib.photo(i)["is_pick"] for i in (first, second, third)] == [1, 0, 0]
    label = read_xmp(Path(lib.photo(first)["current_path"]).with_suffix(".xmp")).get("Xmp.xmp.Label")
    assert label == "Green"
    assert "Xmp.xmp.Label" not in read_xmp(Path(lib.photo(second)["current_path"]).with_suffix(".xmp"))


def test_rejecting_the_pick_hands_the_pick_to_the_sharpest_frame_left(lib, folders):
    a = photo(lib, folders, "DSC00001", pair=False, scores=[40.0], sidecar=None)
    b = photo(lib, folders, "DSC00002", pair=False, scores=[60.0], sidecar=None, captured="2026-11-22T14:00:01")
    overrides.reject(lib, b)
    assert (lib.photo(a)["is_pick"], lib.photo(b)["is_pick"]) == (1, 0)


def test_pick_on_a_photo_alone_in_its_cluster_is_refused_and_leaves_nothing_for_ctrl_z_to_undo(lib, folders):
    # Two photos of different scenes: each is alone in a cluster of its own, no burst.
    rated = photo(lib, folders, "DSC00001", pair=False, sidecar=None, phash="0000000000000000")
    alone = photo(lib, folders, "DSC00002", pair=False, sidecar=None, phash="ffffffffffffffff")
    assert lib.photo(alone)["cluster_id"] != lib.photo(rated)["cluster_id"]
    overrides.set_stars(lib, rated, 3)

    with pytest.raises(overrides.Refused, match="no burst"):
        overrides.pick(lib, alone)

    assert lib.call(lambda db: db.execute("SELECT pick_by FROM clusters WHERE id = ?",
                                          [lib.photo(alone)["cluster_id"]]).fetchone()[0]) != "photographer"
    # The photographer's last decision is still the 3 stars: that is what undo puts back.
    done = overrides.undo_last(lib)
    assert done is not None and done.photo_id == rated
    assert (lib.photo(rated)["stars"], lib.photo(rated)["decided_by"]) == (5, "machine")


def test_a_file_moved_by_hand_between_star_folders_is_a_decision_and_its_partner_and_sidecar_follow(lib, folders):
    photo_id = photo(lib, folders)
    five, three = folders["library"] / "5-stars", folders["library"] / "3-stars"
    three.mkdir(exist_ok=True)
    os.rename(five / "DSC00001.ARW", three / "DSC00001.ARW")

    done = overrides.moved_by_hand(lib, str(five / "DSC00001.ARW"), str(three / "DSC00001.ARW"))

    assert done is not None
    assert sorted(p.name for p in three.iterdir()) == ["DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"]
    assert rating(three / "DSC00001.ARW") == "3"
    row = lib.photo(photo_id)
    assert (row["stars"], row["decided_by"], row["pair_path"]) == (3, "photographer", str(three / "DSC00001.JPG"))
    # And undo still knows the way home.
    res = lib.call(lambda db: undo.undo(db))
    assert res.restored and (folders["inbox"] / "DSC00001.ARW").exists()


def test_moves_made_while_starsort_was_stopped_are_found_at_the_next_start(lib, folders):
    photo_id = photo(lib, folders, pair=False)
    five, one = folders["library"] / "5-stars", folders["library"] / "1-star"
    one.mkdir()
    os.rename(five / "DSC00001.JPG", one / "DSC00001.JPG")

    pipeline.recover(lib)

    row = lib.photo(photo_id)
    assert (row["stars"], row["decided_by"], row["current_path"]) == (1, "photographer", str(one / "DSC00001.JPG"))
    assert rating(one / "DSC00001.JPG") == "1" and not (five / "DSC00001.xmp").exists()


def test_a_decision_whose_move_a_crash_cut_off_is_moved_at_the_next_start(lib, folders):
    photo_id = photo(lib, folders)
    now = time.time()
    # The decision committed, then the process died before its move.
    lib.call(lambda db: decisions.decide(db, photo_id, stars=2, rejected=False, decided_by="photographer", now=now))

    pipeline.recover(lib)

    row = lib.photo(photo_id)
    assert Path(row["current_path"]).parent.name == "2-stars" and rating(row["current_path"]) == "2"


def test_a_re_rate_moves_the_machines_photos_and_never_the_photographers(lib, folders):
    # 11.0 clears 10.0 by 10 %: 3★; below 12.0, but soft: 2★.
    mine = photo(lib, folders, "DSC00001", pair=False, stars=3, scores=[11.0], sidecar=None)
    theirs = photo(lib, folders, "DSC00002", pair=False, stars=3, scores=[11.0], sidecar=None,
                   phash="0000ffff0000ffff")
    overrides.set_stars(lib, mine, 5)                      # the photographer agrees: 5

    cfg = lib.cfg.model_copy(update={"blur": lib.cfg.blur.model_copy(update={"threshold": 12.0})})
    assert [c[0] for c in lib.call(lambda db: rerate.plan(db, cfg))] == [theirs]
    res = rerate.apply(lib, cfg)

    assert res["changed"] == 1 and res["moved"] == 1
    assert Path(lib.photo(theirs)["current_path"]).parent.name == "2-stars"
    assert rating(lib.photo(theirs)["current_path"]) == "2"
    assert Path(lib.photo(mine)["current_path"]).parent.name == "5-stars"
    assert lib.photo(mine)["machine_stars"] == 2           # what `U` would now return it to


def test_in_rate_in_place_mode_an_override_rewrites_the_rating_and_moves_nothing(make_library, folders):
    lib = make_library(mode="rate-in-place")
    photo_id = photo(lib, folders, pair=False, sidecar=None)
    before = tree(folders["inbox"])

    overrides.set_stars(lib, photo_id, 2)

    assert rating(folders["inbox"] / "DSC00001.JPG") == "2"
    assert {k: v for k, v in tree(folders["inbox"]).items() if not k.endswith(".xmp")} == \
        {k: v for k, v in before.items() if not k.endswith(".xmp")}
    assert files(folders["library"]) == []


def test_a_whole_selection_moved_by_hand_is_one_decision_and_undo_still_finds_every_file(lib, folders):
    photo_id = photo(lib, folders)
    five, three = folders["library"] / "5-stars", folders["library"] / "3-stars"
    three.mkdir(exist_ok=True)
    for name in ("DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"):        # as a file manager moves a selection
        os.rename(five / name, three / name)

    overrides.moved_by_hand(lib, str(five / "DSC00001.ARW"), str(three / "DSC00001.ARW"))
    assert overrides.moved_by_hand(lib, str(five / "DSC00001.JPG"), str(three / "DSC00001.JPG")) is None

    row = lib.photo(photo_id)
    assert (row["stars"], row["current_path"], row["pair_path"]) == (
        3, str(three / "DSC00001.ARW"), str(three / "DSC00001.JPG"))
    assert len(lib.call(lambda db: list(db.query("SELECT * FROM decisions")))) == 1
    assert rating(three / "DSC00001.ARW") == "3"
    res = lib.call(lambda db: undo.undo(db))
    assert res.restored and not res.skipped
    assert {p.name for p in folders["inbox"].iterdir()} == {"DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"}
    assert files(folders["library"]) == []
