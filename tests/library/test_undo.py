"""`starsort undo`: filed photos go back from the move journal, byte for byte, never over anything."""
from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path

import pyexiv2
import pytest
import rawpy
from PIL import Image

from starsort.library import undo

from ..daemon import Starsort
from ..helpers import DATA, FOREIGN_SIDECAR, files, read_xmp, tree


@pytest.mark.e2e
def test_undo_all_restores_the_inbox_byte_for_byte_after_sort_merged_converted_and_quarantined(tmp_path):
    s = Starsort(tmp_path)
    card = s.src / "card1" / "DCIM"
    card.mkdir(parents=True)
    shutil.copyfile(DATA / "two_people.ARW", card / "DSC00008.ARW")          # a RAW+JPEG pair ...
    shutil.copyfile(DATA / "kit_with_rose.jpg", card / "DSC00008.JPG")
    (card / "DSC00008.xmp").write_text(FOREIGN_SIDECAR, encoding="utf-8")   # ... with darktable's keywords
    shutil.copyfile(DATA / "lennon_rotated.ARW", s.src / "DSC00009.ARW")     # a lone raw: converted
    nodate = s.src / "DSC03755.JPG"
    shutil.copyfile(DATA / "SonySLT-A55__DSC3755.JPG", nodate)
    with pyexiv2.Image(str(nodate)) as img:
        img.modify_exif({"Exif.Photo.DateTimeOriginal": None})
    shutil.copyfile(DATA / "SonySLT-A55__DSC3756.JPG", s.src / "DSC03756.JPG")
    (s.src / "empty.JPG").write_bytes(b"")                                    # quarantined
    before = tree(s.src)

    s.sort("--convert-jpeg")

    rows = {Path(r["original_path"]).name: r for r in s.report()}
    pair = rows["DSC00008.ARW"]
    sidecar = Path(pair["current_path"]).with_suffix(".xmp")
    keys = read_xmp(sidecar)                                                  # merged, keywords kept
    assert keys["Xmp.dc.subject"] == ["holiday", "Ærø"] and keys["Xmp.xmp.Rating"] == pair["stars"]
    assert keys["Xmp.darktable.history[1]/darktable:operation"] == "exposure"
    # The report flags the photo whose EXIF lacks DateTimeOriginal, and only that one.
    assert (rows["DSC03755.JPG"]["exif_ok"], rows["DSC03755.JPG"]["exif_missing"]) == ("0", "DateTimeOriginal")
    assert (rows["DSC03756.JPG"]["exif_ok"], rows["DSC03756.JPG"]["exif_missing"]) == ("1", "")
    assert rows["empty.JPG"]["state"] == "quarantined" and rows["empty.JPG"]["exif_ok"] == ""
    converted = Path(rows["DSC00009.ARW"]["current_path"]).with_suffix(".jpg")
    with rawpy.imread(str(DATA / "lennon_rotated.ARW")) as raw:
        sensor = (raw.sizes.width, raw.sizes.height)
    with Image.open(converted) as im:                        # a full development, not a half-size one
        assert im.format == "JPEG" and sorted(im.size) == sorted(sensor)
    with pyexiv2.Image(str(converted)) as img:
        assert img.read_exif()["Exif.Photo.DateTimeOriginal"] == "2024:05:01 10:00:03"
    # A raw filed with its camera JPEG gets no converted one.
    assert not Path(pair["current_path"]).with_suffix(".jpg").exists()

    r = s.cli("undo", "--all")

    assert tree(s.src) == before
    assert files(s.library) == []
    assert "5 photo(s) restored" in r.stderr
    # Back where they came from, the photos are out of starsort's care: history, not report rows.
    assert s.report() == []
    assert json.loads(s.cli("status", "--json").stdout)["undone"] == 5


@pytest.mark.e2e
def test_undo_never_overwrites_a_file_that_took_an_old_name_and_restores_the_rest(tmp_path):
    s = Starsort(tmp_path)
    shutil.copyfile(DATA / "ivan.jpg", s.src / "IMG_1.JPG")
    shutil.copyfile(DATA / "clapton-2.jpg", s.src / "IMG_2.JPG")
    s.sort()
    newcomer = (DATA / "no-faces.jpg").read_bytes()
    (s.src / "IMG_1.JPG").write_bytes(newcomer)                 # a new card reused the name

    r = s.cli("undo", "--all", ok=False)

    assert r.returncode == 1 and "IMG_1.JPG" in r.stderr and "nothing overwritten" in r.stderr
    assert (s.src / "IMG_1.JPG").read_bytes() == newcomer
    assert (s.src / "IMG_2.JPG").read_bytes() == (DATA / "clapton-2.jpg").read_bytes()
    [still_filed] = [p for p in files(s.library) if p.suffix == ".JPG"]
    assert still_filed.read_bytes() == (DATA / "ivan.jpg").read_bytes()
    assert still_filed.with_suffix(".xmp").exists()            # its rating stays with it


@pytest.mark.e2e
def test_undo_since_takes_back_only_what_was_filed_since_then(tmp_path):
    s = Starsort(tmp_path)
    shutil.copyfile(DATA / "ivan.jpg", s.src / "IMG_1.JPG")
    s.sort()
    time.sleep(1.1)
    between = datetime.now().isoformat(timespec="seconds")
    time.sleep(1.1)
    shutil.copyfile(DATA / "clapton-2.jpg", s.src / "IMG_2.JPG")
    s.sort()

    s.cli("undo", "--since", between)

    assert sorted(p.name for p in s.src.iterdir()) == ["IMG_2.JPG"]
    assert [p.name for p in files(s.library) if p.suffix == ".JPG"] == ["IMG_1.JPG"]


def test_since_reads_durations_and_local_times():
    now = 1_800_000_000.0
    assert undo.parse_since("2h", now) == now - 7200
    assert undo.parse_since("30m", now) == now - 1800
    assert undo.parse_since("1d", now) == now - 86400
    assert undo.parse_since("2026-11-22T14:00") == datetime(2026, 11, 22, 14, 0).timestamp()
    with pytest.raises(ValueError, match="not a time"):
        undo.parse_since("last tuesday")


def test_since_reads_a_time_of_day_as_today_and_refuses_one_still_to_come():
    now = datetime(2026, 12, 4, 16, 30).timestamp()
    assert undo.parse_since("14:00", now) == datetime(2026, 12, 4, 14, 0).timestamp()
    assert undo.parse_since("9:05:30", now) == datetime(2026, 12, 4, 9, 5, 30).timestamp()
    with pytest.raises(ValueError, match="later than now"):
        undo.parse_since("17:00", now)


@pytest.mark.e2e
def test_undo_all_counts_a_photo_already_put_back_by_hand_as_done(tmp_path):
    s = Starsort(tmp_path)
    shutil.copyfile(DATA / "ivan.jpg", s.src / "IMG_1.JPG")
    shutil.copyfile(DATA / "clapton-2.jpg", s.src / "IMG_2.JPG")
    s.sort()
    [filed] = [Path(r["current_path"]) for r in s.report() if r["original_path"].endswith("IMG_1.JPG")]
    shutil.move(filed, s.src / "IMG_1.JPG")                      # the photographer put it back

    r = s.cli("undo", "--all")

    assert r.returncode == 0 and "2 photo(s) restored" in r.stderr, r.stderr
    assert sorted(p.name for p in s.src.iterdir()) == ["IMG_1.JPG", "IMG_2.JPG"]
    assert [p for p in files(s.library) if p.suffix == ".JPG"] == []


@pytest.mark.e2e
def test_photos_filed_again_after_undo_all_are_one_row_each_and_status_counts_them_once(tmp_path):
    s = Starsort(tmp_path)
    shutil.copyfile(DATA / "ivan.jpg", s.src / "IMG_1.JPG")
    shutil.copyfile(DATA / "clapton-2.jpg", s.src / "IMG_2.JPG")
    (s.src / "empty.JPG").write_bytes(b"")                      # quarantined each time
    s.sort()
    s.cli("undo", "--all")
    s.sort()

    rows = s.report()
    assert sorted(Path(r["original_path"]).name for r in rows) == ["IMG_1.JPG", "IMG_2.JPG", "empty.JPG"]
    assert all(Path(r["current_path"]).exists() and not r["error"].startswith("no longer") for r in rows), rows
    status = json.loads(s.cli("status", "--json").stdout)
    assert status["photos"] == {"queued": 0, "done": 2, "quarantined": 1, "failed": 0, "duplicate": 0}
    assert status["undone"] == 0
