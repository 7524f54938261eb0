"""EXIF validation: the required tags a photo lacks, and values no camera should write."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyexiv2
import pytest

from starsort.analysis import exif
from starsort.config import Config
from starsort.analysis.job import Job
from starsort.pipeline import ANALYSIS, Context, decode

from ..helpers import DATA, copy_fixture

FULL_EXIF = "SonySLT-A55__DSC3755.JPG"      # a camera JPEG with every default required tag


def check(path: Path, kind: str = "jpeg", **exif_cfg) -> Job:
    job = Job(photo_id=1, path=str(path), kind=kind)
    exif.run(job, Context(config=Config.model_validate({"exif": exif_cfg} if exif_cfg else {})))
    return job


def edited(tmp_path: Path, changes: dict) -> Path:
    """A copy of the camera JPEG with some EXIF tags changed (None deletes one)."""
    p = copy_fixture(FULL_EXIF, tmp_path, "DSC00001.JPG")
    with pyexiv2.Image(str(p)) as img:
        img.modify_exif(changes)
    return p


def test_a_camera_jpeg_with_every_required_tag_passes():
    job = check(DATA / FULL_EXIF)
    assert job.exif_missing == [] and job.exif_problems == []
    assert job.exif["Make"] == "SONY" and job.exif["ISO"] == "100" and job.exif["ExposureTime"] == "1/50"


def test_a_sony_arw_is_read_through_exiv2_and_passes():
    job = check(DATA / "two_people.ARW", kind="raw")
    assert job.exif_missing == [] and job.exif_problems == []
    assert job.exif["Model"] == "ILCE-7M3"


def test_a_photo_without_date_time_original_is_missing_exactly_that(tmp_path):
    job = check(edited(tmp_path, {"Exif.Photo.DateTimeOriginal": None}))
    assert job.exif_missing == ["DateTimeOriginal"]


def test_a_photo_with_no_exif_at_all_misses_every_required_tag():
    job = check(DATA / "ivan.jpg")
    assert job.exif_missing == ["DateTimeOriginal", "Make", "Model", "ExposureTime", "FNumber", "ISO"]


def test_a_kodak_that_writes_its_tags_in_ifd0_is_not_missing_them():
    # The DC120 puts DateTimeOriginal, ExposureTime and FNumber in IFD0 and no ISO.
    job = check(DATA / "KodakDC120_P003913.KDC", kind="raw")
    assert job.exif_missing == ["ISO"]


@pytest.mark.parametrize("changes,problem", [
    ({"Exif.Photo.DateTimeOriginal": "1980:01:01 00:00:00"}, "DateTimeOriginal 1980-01-01T00:00:00 is before 1990"),
    ({"Exif.Photo.DateTimeOriginal": f"{datetime.now().year + 2}:06:01 12:00:00"}, "is in the future"),
    ({"Exif.Photo.DateTimeOriginal": "yesterday"}, "DateTimeOriginal is not a date"),
    ({"Exif.Photo.ExposureTime": "0/1"}, "ExposureTime is 0/1 (zero or negative)"),
    ({"Exif.Photo.FNumber": "0/0"}, "FNumber is 0/0 (zero or negative)"),
])
def test_impossible_values_are_problems(tmp_path, changes, problem):
    job = check(edited(tmp_path, changes))
    assert any(problem in p for p in job.exif_problems), job.exif_problems
    assert job.exif_missing == []


def test_a_clock_never_set_counts_as_a_missing_date_not_a_problem(tmp_path):
    job = check(edited(tmp_path, {"Exif.Photo.DateTimeOriginal": "0000:00:00 00:00:00"}))
    assert job.exif_missing == ["DateTimeOriginal"] and job.exif_problems == []


def test_required_tags_and_the_earliest_year_come_from_the_config(tmp_path):
    photo = edited(tmp_path, {"Exif.Photo.DateTimeOriginal": "1995:01:01 00:00:00"})
    job = check(photo, required=["Exif.Image.Artist", "LensModel"], earliest_year=2000)
    assert job.exif_missing == ["Exif.Image.Artist"]
    assert job.exif_problems == ["DateTimeOriginal 1995-01-01T00:00:00 is before 2000"]


def test_the_exif_stage_runs_right_after_decode_in_the_worker():
    assert ANALYSIS[0] is decode and ANALYSIS[1] is exif
    result = check(DATA / FULL_EXIF).result()
    assert result["exif_missing"] == [] and result["exif"]["Model"] == "SLT-A55V"
