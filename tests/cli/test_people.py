"""`starsort people`: find a person from one photo, crop their faces, name them into XMP,
through the real pipeline (`starsort sort`, MTCNN, SFace) on real photos."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest
from PIL import Image

from starsort.library import xmp

from ..daemon import Starsort
from ..helpers import DATA

pytestmark = pytest.mark.e2e

LIBRARY = ["kit_with_rose.jpg", "rose_leslie_img1.jpg", "clapton-2.jpg", "ivan.jpg", "multiface.jpg"]


@pytest.fixture(scope="module")
def sorted_library(tmp_path_factory):
    s = Starsort(tmp_path_factory.mktemp("people"))
    for name in LIBRARY:
        shutil.copyfile(DATA / name, s.src / name)
    s.sort()
    return s


def _find(s: Starsort, *args: str) -> list[dict]:
    return json.loads(s.cli("people", "find", *args, "--json").stdout)


def test_one_photo_of_a_person_finds_the_other_photo_they_are_in_and_no_stranger(sorted_library):
    s = sorted_library
    found = _find(s, str(DATA / "kit_harington_john2.jpeg"))      # Kit, from a photo not in the library
    assert [r["original_path"].rsplit("/", 1)[-1] for r in found] == ["kit_with_rose.jpg"]
    [hit] = found
    assert set(hit) == {"path", "original_path", "face_id", "distance", "box"}
    assert hit["path"].startswith(str(s.library)) and 0 <= hit["distance"] < 0.5
    # Rose is in two library photos, closest first; strangers (Clapton, Ivan, the group) are not.
    rose = _find(s, str(DATA / "rose_leslie_img1.jpg"))
    names = [r["original_path"].rsplit("/", 1)[-1] for r in rose]
    assert sorted(names) == ["kit_with_rose.jpg", "rose_leslie_img1.jpg"]
    assert [r["distance"] for r in rose] == sorted(r["distance"] for r in rose)
    # A tighter threshold finds less: only the library's own copy of the reference.
    tight = _find(s, str(DATA / "rose_leslie_img1.jpg"), "--threshold", "0.01")
    assert [r["original_path"].rsplit("/", 1)[-1] for r in tight] == ["rose_leslie_img1.jpg"]
    # The reference alone (--expand 0) finds the same two here; a distance out of range is refused.
    alone = _find(s, str(DATA / "rose_leslie_img1.jpg"), "--expand", "0")
    assert sorted(r["original_path"].rsplit("/", 1)[-1] for r in alone) == sorted(names)
    r = s.cli("people", "find", str(DATA / "rose_leslie_img1.jpg"), "--threshold", "0", ok=False)
    assert r.returncode == 2 and "--threshold" in r.stderr
    # --face chooses among a group reference's faces, numbered from the left.
    r = s.cli("people", "find", str(DATA / "kit_with_rose.jpg"), "--face", "3", ok=False)
    assert r.returncode == 2 and "holds 2 face(s)" in r.stderr


def test_copy_to_copies_the_photos_found_and_never_moves_them(sorted_library, tmp_path):
    s = sorted_library
    out = tmp_path / "kit"
    found = json.loads(s.cli("people", "find", str(DATA / "kit_harington_john2.jpeg"), "--json",
                             "--copy-to", str(out)).stdout)
    assert [p.name for p in out.iterdir()] == ["kit_with_rose.jpg"]
    assert (s.library / found[0]["path"].split(str(s.library) + "/")[1]).exists()


def test_a_crop_is_cut_from_the_full_resolution_original_and_recorded(sorted_library, tmp_path):
    s = sorted_library
    out = tmp_path / "crops"
    r = s.cli("people", "crop", str(DATA / "rose_leslie_img1.jpg"), "--out", str(out), "--min-size", "64",
              "--margin", "0.1", "--json")
    records = json.loads(r.stdout)
    assert len(records) == 2
    with open(out / "crops.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["crop"] for row in rows] == [rec["crop"] for rec in records]
    for rec in records:
        with Image.open(out / rec["crop"]) as im:
            # Full resolution: the box plus 10 % each side, in the original's pixels.
            w = (rec["x2"] - rec["x1"]) * 1.2
            assert abs(im.width - w) <= 3, (im.width, w)
        assert rec["blur_score"] >= 10.0 and rec["distance"] < 0.5
    r = s.cli("people", "crop", str(DATA / "rose_leslie_img1.jpg"), "--out", str(tmp_path / "big"),
              "--min-size", "4000")
    assert "skipped: 2 smaller than --min-size" in r.stderr


def test_faces_are_grouped_and_a_name_given_on_the_command_line_reaches_xmp(sorted_library):
    s = sorted_library
    people_ = json.loads(s.cli("people", "list", "--json").stdout)
    rose = [p for p in people_ if {f["path"].rsplit("/", 1)[-1] for f in p["faces"]}
            == {"kit_with_rose.jpg", "rose_leslie_img1.jpg"}]
    assert len(rose) == 1, people_
    for p in people_:                                  # never two faces of one photo in one person
        assert len({f["path"] for f in p["faces"]}) == len(p["faces"])
    assert "is Rose Leslie (2 photo(s))" in s.cli("people", "name", str(rose[0]["person_id"]), "Rose Leslie").stdout
    for f in rose[0]["faces"]:
        photo = f["path"]
        [sidecar] = [p for p in xmp.sidecar_paths(photo, "adobe") if p.exists()]
        got = xmp.read_people(sidecar)
        assert "Rose Leslie" in got["persons"] and [r["name"] for r in got["regions"]] == ["Rose Leslie"]
        if shutil.which("exiftool"):
            out = json.loads(subprocess.run(["exiftool", "-j", "-RegionName", "-RegionType", "-PersonInImage",
                                             str(sidecar)], capture_output=True, text=True, check=True).stdout)
            assert out[0]["RegionName"] == "Rose Leslie" and out[0]["PersonInImage"] == "Rose Leslie"
    listed = json.loads(s.cli("people", "list", "--json").stdout)
    assert listed[0]["name"] == "Rose Leslie"
