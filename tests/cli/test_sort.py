"""`starsort sort`: a folder sorted once through the service's own pipeline, on real photos.

These run the command as a subprocess (analysis workers, MTCNN and all), so
they are end-to-end tests: each sort of a few photos takes 5-15 s here.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyexiv2
import pytest

from starsort.cli import sort as batch
from starsort.library import xmp

from ..daemon import Starsort
from ..helpers import DATA, EMPTY_SIDECAR, files, read_xmp, sha256, tree

pytestmark = pytest.mark.e2e

# Thirteen different photos: no two of them are within 2 bits of pHash.
DISTINCT = ["ivan.jpg", "clapton-2.jpg", "kit_with_rose.jpg", "no-faces.jpg", "multiface.jpg",
            "inspireface_blur_face.jpg", "SonyDSC-P5_DSC00001.JPG", "106_NIKON-D3400-35MM_F.JPG",
            "106_NIKON-D3400-35MM_M.JPG", "lennon_rotated.ARW", "two_people.ARW",
            "SonySLT-A55__DSC3755.JPG", "KodakDC120_P003913.KDC"]


def test_sort_sample_20_sorts_20_photos_of_a_larger_folder_and_leaves_the_rest_untouched(tmp_path):
    s = Starsort(tmp_path)
    for name in DISTINCT:                       # 26 photos: each picture twice, as from two cards
        shutil.copyfile(DATA / name, s.src / f"a_{name}")
        shutil.copyfile(DATA / name, s.src / f"b_{name}")
    before = tree(s.src)

    r = s.sort("--sample", "20", "--seed", "7")

    rows = s.report()
    assert len(rows) == 20 and {row["state"] for row in rows} <= {"done", "duplicate"}
    assert len([line for line in r.stdout.splitlines() if line.startswith("[")]) == 20   # plain lines, no TTY
    left = tree(s.src)
    assert len(left) == 6 and all(before[name] == digest for name, digest in left.items())
    filed = {Path(row["original_path"]).name for row in rows}
    assert filed.isdisjoint(left) and filed | set(left) == set(before)
    for row in rows:
        assert sha256(Path(row["current_path"])) == before[Path(row["original_path"]).name]

    # A picture sampled from both cards is filed once; its copy is set aside, and
    # `duplicates` lists exactly those as exact copies, with no look-alikes.
    groups = json.loads(s.cli("duplicates", "--json").stdout)
    twins = {n[2:] for n in filed if f"a_{n[2:]}" in filed and f"b_{n[2:]}" in filed}
    assert twins and sorted({Path(p).name[2:] for p in g}.pop() for g in groups["exact"]) == sorted(twins)
    assert all(len({Path(p).name[2:] for p in g}) == 1 for g in groups["exact"])
    assert groups["look_alike"] == []
    by_name = {Path(row["original_path"]).name: row for row in rows}
    for twin in twins:
        pair = sorted((by_name[f"a_{twin}"], by_name[f"b_{twin}"]), key=lambda row: row["state"])
        assert [row["state"] for row in pair] == ["done", "duplicate"]
        assert pair[1]["duplicate_of"] == pair[0]["current_path"]
        assert Path(pair[1]["current_path"]).parent.name == "duplicates"
    assert len([row for row in rows if row["state"] == "done"]) == 20 - len(twins)


def test_a_sample_draws_whole_photos_and_the_same_seed_draws_the_same_ones(tmp_path):
    for i in range(10):
        shutil.copyfile(DATA / "ivan.jpg", tmp_path / f"IMG_{i}.JPG")
    shutil.copyfile(DATA / "two_people.ARW", tmp_path / "IMG_3.ARW")      # a pair with IMG_3.JPG
    (tmp_path / "IMG_3.xmp").write_text(EMPTY_SIDECAR)

    one = batch.select(tmp_path, tmp_path / "lib", sample=4, seed=11)
    two = batch.select(tmp_path, tmp_path / "lib", sample=4, seed=11)

    assert len(one.photos) == 10 and len(one.chosen) == 4 and one.chosen == two.chosen
    pair = next(p for p in one.photos if any(f.endswith("IMG_3.ARW") for f in p))
    assert sorted(Path(f).name for f in pair) == ["IMG_3.ARW", "IMG_3.JPG", "IMG_3.xmp"]
    draws = {tuple(map(tuple, batch.select(tmp_path, tmp_path / "lib", 4, seed).chosen)) for seed in range(20)}
    assert len(draws) > 1


@pytest.mark.parametrize("naming,sidecar_of", [
    ("adobe", lambda raw: raw.with_suffix(".xmp")),
    ("ext", lambda raw: raw.with_name(raw.name + ".xmp")),
])
def test_exiv2_reads_the_rating_from_every_filed_arw_sidecar(tmp_path, naming, sidecar_of):
    s = Starsort(tmp_path, xmp_sidecar_naming=naming, xmp_rate_rejects_as="-1")
    for name in ("two_people.ARW", "two_people_defocus.ARW", "lennon_rotated.ARW"):
        shutil.copyfile(DATA / name, s.src / name)

    s.sort()

    rows = {Path(r["original_path"]).name: r for r in s.report()}
    assert len(rows) == 3
    for name, row in rows.items():
        raw = Path(row["current_path"])
        keys = read_xmp(sidecar_of(raw))
        stars = int(row["stars"])
        assert keys["Xmp.xmp.Rating"] == ("-1" if stars == 1 else str(stars)), name
        other = raw.with_name(raw.name + ".xmp") if naming == "adobe" else raw.with_suffix(".xmp")
        assert not other.exists()
    # The defocused frame is a reject; the sharp frame of the same burst is its pick.
    assert rows["two_people_defocus.ARW"]["stars"] == "1"
    assert rows["two_people.ARW"]["cluster_id"] == rows["two_people_defocus.ARW"]["cluster_id"]
    assert read_xmp(sidecar_of(Path(rows["two_people.ARW"]["current_path"])))["Xmp.xmp.Label"] == "Green"
    assert "Xmp.xmp.Label" not in read_xmp(sidecar_of(Path(rows["two_people_defocus.ARW"]["current_path"])))
    # Alone in its cluster: its own pick, but no burst to pick from, so no label.
    assert "Xmp.xmp.Label" not in read_xmp(sidecar_of(Path(rows["lennon_rotated.ARW"]["current_path"])))


def test_the_pick_label_moves_when_a_sharper_frame_of_the_burst_arrives_later(tmp_path):
    # Two byte-identical frames stand for a burst, so copies must be filed.
    s = Starsort(tmp_path, duplicates={"on_import": "file"})
    shutil.copyfile(DATA / "two_people_defocus.ARW", s.src / "DSC00001.ARW")
    shutil.copyfile(DATA / "two_people_defocus.ARW", s.src / "DSC00002.ARW")
    s.sort()
    first = Path(s.report()[0]["current_path"])
    assert xmp.read_label(first.with_suffix(".xmp")) == "Green"

    shutil.copyfile(DATA / "two_people.ARW", s.src / "DSC00003.ARW")
    s.sort()

    rows = {Path(r["original_path"]).name: r for r in s.report()}
    assert len({r["cluster_id"] for r in rows.values()}) == 1
    sharp = Path(rows["DSC00003.ARW"]["current_path"]).with_suffix(".xmp")
    assert xmp.read_label(sharp) == "Green"
    assert xmp.read_label(first.with_suffix(".xmp")) is None
    assert xmp.read_rating(first.with_suffix(".xmp")) == 1          # the rating stays as it was


def test_rate_in_place_moves_nothing_and_writes_ratings_the_other_tools_read(tmp_path):
    s = Starsort(tmp_path, mode="rate-in-place", xmp_in_jpeg="true")
    shutil.copyfile(DATA / "SonySLT-A55__DSC3755.JPG", s.src / "DSC03755.JPG")
    shutil.copyfile(DATA / "lennon_rotated.ARW", s.src / "DSC00010.ARW")
    raw_before = sha256(s.src / "DSC00010.ARW")

    s.sort()
    s.sort()                                                     # a second run rates nothing twice

    rows = {Path(r["original_path"]).name: r for r in s.report()}
    assert len(rows) == 2 and {r["state"] for r in rows.values()} == {"done"}
    assert all(r["current_path"] == r["original_path"] for r in rows.values())
    assert not s.library.exists() or not files(s.library)
    assert sha256(s.src / "DSC00010.ARW") == raw_before
    assert xmp.read_rating(s.src / "DSC00010.xmp") == int(rows["DSC00010.ARW"]["stars"])
    with pyexiv2.Image(str(s.src / "DSC03755.JPG")) as img:       # inside the JPEG, for Lightroom
        assert img.read_xmp()["Xmp.xmp.Rating"] == rows["DSC03755.JPG"]["stars"]
    assert xmp.read_rating(s.src / "DSC03755.xmp") == int(rows["DSC03755.JPG"]["stars"])


def test_sort_leaves_the_daemons_own_pending_photos_alone(tmp_path):
    import sqlite3
    import time
    s = Starsort(tmp_path)
    shutil.copyfile(DATA / "ivan.jpg", s.src / "ivan.jpg")
    s.sort()                                                  # creates the database
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    waiting = shutil.copyfile(DATA / "clapton-2.jpg", inbox / "queued.jpg")
    landing = shutil.copyfile(DATA / "kit_with_rose.jpg", inbox / "landing.jpg")
    st = landing.stat()
    now = time.time()
    with sqlite3.connect(s.db) as conn:                      # what a stopped daemon left in its queue
        conn.execute("INSERT INTO photos (original_path, kind, state, queued_at, updated_at)"
                     " VALUES (?, 'jpeg', 'queued', ?, ?)", (str(waiting), now, now))
        conn.execute("INSERT INTO inbox (path, size, mtime_ns, seen_at, stable_since) VALUES (?, ?, ?, ?, ?)",
                     (str(landing), st.st_size, st.st_mtime_ns, now - 60, now - 60))
    shutil.copyfile(DATA / "multiface.jpg", s.src / "multiface.jpg")

    s.sort()

    states = {Path(r["original_path"]).name: r["state"] for r in s.report()}
    assert states == {"ivan.jpg": "done", "multiface.jpg": "done", "queued.jpg": "queued"}
    assert sorted(p.name for p in inbox.iterdir()) == ["landing.jpg", "queued.jpg"]
