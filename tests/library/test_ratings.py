"""Ratings and pick labels go into XMP that exiv2 (and so Lightroom, darktable, digiKam) reads."""
from __future__ import annotations

import time

from starsort.library import outcomes, ratings
from starsort.library.context import Library
from starsort.store import photos

from ..helpers import copy_fixture, read_xmp


def _filed(lib: Library, name: str, stars: int, cluster: int | None = None, pick: int = 0) -> int:
    src = copy_fixture("ivan.jpg", lib.cfg.inboxes[0], name)
    now = time.time()
    photo_id = lib.call(lambda db: photos.queue(db, original=str(src), pair=None, kind="jpeg", size=None,
                                                mtime_ns=None, now=now))
    lib.call(lambda db: db.execute("UPDATE photos SET state = 'analysed', stars = ?, cluster_id = ?, is_pick = ?"
                                   " WHERE id = ?", (stars, cluster, pick, photo_id)))
    assert outcomes.file(lib, photo_id) == "done"
    return photo_id


def test_the_rating_is_written_to_a_new_sidecar_and_recorded_for_undo(lib, folders):
    photo_id = _filed(lib, "DSC1.JPG", 4)

    ratings.write(lib, photo_id)

    sidecar = folders["library"] / "4-stars" / "DSC1.xmp"
    assert read_xmp(sidecar)["Xmp.xmp.Rating"] == "4"
    assert lib.call(lambda db: db.execute("SELECT kind, created, original FROM artifacts").fetchall()) == [
        ("sidecar", 1, None)]


def test_a_one_star_photo_is_written_as_rejected_when_configured(make_library, folders):
    lib = make_library(xmp={"rate_rejects_as": -1})
    photo_id = _filed(lib, "DSC2.JPG", 1)
    ratings.write(lib, photo_id)
    assert read_xmp(folders["library"] / "1-star" / "DSC2.xmp")["Xmp.xmp.Rating"] == "-1"


def test_the_pick_label_moves_to_the_sharper_frame_of_a_burst(lib, folders):
    cluster = lib.call(lambda db: db.execute(
        "INSERT INTO clusters (pick_photo_id, size, created_at) VALUES (NULL, 2, ?) RETURNING id",
        (time.time(),)).fetchone()[0])
    first = _filed(lib, "DSC3.JPG", 4, cluster, pick=1)
    ratings.write(lib, first)
    label = lib.cfg.xmp.pick_label
    assert read_xmp(folders["library"] / "4-stars" / "DSC3.xmp")["Xmp.xmp.Label"] == label

    second = _filed(lib, "DSC4.JPG", 5, cluster, pick=1)
    lib.call(lambda db: db.execute("UPDATE photos SET is_pick = 0 WHERE id = ?", (first,)))
    ratings.write(lib, second)

    assert read_xmp(folders["library"] / "5-stars" / "DSC4.xmp")["Xmp.xmp.Label"] == label
    assert "Xmp.xmp.Label" not in read_xmp(folders["library"] / "4-stars" / "DSC3.xmp")
    assert lib.photo(first)["xmp_label"] is None and lib.photo(second)["xmp_label"] == label
