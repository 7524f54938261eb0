"""Preview: the review page's pictures, written by the worker from pixels it already decoded."""
from __future__ import annotations

import io
import os
import shutil

import pyexiv2
from PIL import Image, ImageOps

from starsort import paths
from starsort.analysis import preview

from ..helpers import DATA
from .stages import context_with, run


def _size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).size


def test_a_jpeg_gets_a_grid_and_a_loupe_preview_upright_and_no_larger_than_asked(tmp_path):
    ctx = context_with(review={"previews": str(tmp_path)})
    job = run("SonySLT-A55__DSC3755.JPG", upto="preview", ctx=ctx)
    assert job.preview and len(job.preview) == 24
    small = _size(paths.preview_file(tmp_path, job.preview, "s"))
    large = _size(paths.preview_file(tmp_path, job.preview, "l"))
    assert max(small) == preview.SMALL_PX and max(large) <= preview.LARGE_PX
    assert small[0] > small[1] and large[0] > large[1]                     # landscape, as shot
    assert abs(small[0] / small[1] - large[0] / large[1]) < 0.02
    # A JPEG's full size is the original itself: no copy of it in the cache.
    assert not paths.preview_file(tmp_path, job.preview, "full").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_a_sideways_raw_gets_upright_previews(tmp_path):
    ctx = context_with(review={"previews": str(tmp_path)})
    job = run("lennon_rotated.ARW", upto="preview", ctx=ctx)
    w, h = _size(paths.preview_file(tmp_path, job.preview, "l"))
    assert (w > h) == (job.original_size[0] > job.original_size[1])


def test_a_raw_whose_embedded_jpeg_is_larger_shows_it_as_full_size_with_its_orientation_set(tmp_path):
    ctx = context_with(review={"previews": str(tmp_path)}, analysis={"max_px": 800})
    job = run("two_people.ARW", upto="preview", ctx=ctx)
    full = paths.preview_file(tmp_path, job.preview, "full")
    large = paths.preview_file(tmp_path, job.preview, "l")
    assert full.exists() and max(_size(full)) > max(_size(large))
    with pyexiv2.ImageData(full.read_bytes()) as img:
        assert img.read_exif()["Exif.Image.Orientation"] == str(job.embedded_orientation)


def test_the_key_changes_when_the_file_does_so_the_browser_never_shows_a_stale_preview(tmp_path):
    photo = tmp_path / "IMG.JPG"
    shutil.copyfile(DATA / "ivan.jpg", photo)
    first = preview.key_for(str(photo))
    assert preview.key_for(str(photo)) == first
    st = os.stat(photo)
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert preview.key_for(str(photo)) != first


def test_with_the_page_turned_off_no_preview_is_written(tmp_path):
    ctx = context_with(review={"enabled": False, "previews": str(tmp_path)})
    job = run("ivan.jpg", upto="preview", ctx=ctx)
    assert job.preview is None and list(tmp_path.iterdir()) == []


def test_a_cache_that_cannot_be_written_costs_the_preview_never_the_photo(tmp_path):
    blocked = tmp_path / "previews"
    blocked.write_text("a file where the folder should be")
    ctx = context_with(review={"previews": str(blocked)})
    job = run("ivan.jpg", ctx=ctx)
    assert job.preview is None and job.stars is not None
