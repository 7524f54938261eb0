"""Decode: upright, reduced-size analysis images from JPEGs and raws; bad files refused."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from starsort.job import BadInput

from .analysis_helpers import run
from .conftest import DATA


def test_a_sideways_raw_is_decoded_upright_from_its_embedded_preview():
    import rawpy
    with rawpy.imread(str(DATA / "lennon_rotated.ARW")) as raw:
        assert raw.sizes.flip == 6                    # the camera was held vertically
        stored = raw.extract_thumb()
    stored_w, stored_h = Image.open(__import__("io").BytesIO(stored.data)).size
    job = run("lennon_rotated.ARW", upto="decode")
    h, w = job.image.shape[:2]
    assert job.decode_source == "raw-preview"
    assert (stored_w < stored_h) and (w > h)          # stored on its side, shown upright
    assert job.original_size[0] > job.original_size[1]
    assert max(h, w) == 1600


def test_a_sideways_raws_face_is_found_once_it_is_upright():
    import numpy as np
    from starsort import faces
    from .analysis_helpers import context
    job = run("lennon_rotated.ARW", upto="faces")
    assert len(job.faces) == 1
    # The same pixels left on their side: MTCNN misses the face, so the rotation is what finds it.
    job.image = np.ascontiguousarray(np.rot90(job.image, 1))
    faces.run(job, context())
    assert job.faces == []


def test_a_jpeg_is_decoded_at_reduced_size_and_keeps_its_exif():
    job = run("SonySLT-A55__DSC3755.JPG", upto="decode")
    assert job.decode_source == "jpeg-draft"
    assert job.original_size == (4912, 3264)
    assert 960 <= max(job.image.shape[:2]) <= 1600
    # DCT scaling: decoded at a power-of-two fraction, never the full 16 MP.
    assert job.detail.shape[1] in (4912 // 2, 4912 // 4)
    assert job.captured_at.startswith("20") and job.camera_model == "SLT-A55V"


def test_exif_orientation_is_applied_to_a_jpeg(tmp_path):
    src = Image.open(DATA / "ivan.jpg")
    sideways = src.rotate(90, expand=True).crop((0, 0, 561, 400))   # landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 8                                                   # "rotate 270 CW to view"
    p = tmp_path / "sideways.jpg"
    sideways.save(p, exif=exif, quality=95)
    job = run(p, upto="decode")
    assert job.image.shape[0] > job.image.shape[1]                     # shown portrait
    assert job.original_size == (400, 561)


def test_a_raw_with_only_a_tiny_preview_falls_back_to_a_half_size_demosaic():
    job = run("KodakDC120_P003913.KDC", upto="decode")
    assert job.decode_source == "raw-half"
    assert job.image.shape[0] > 100 and job.image.max() > 0


def test_small_faces_are_cropped_from_pixels_decoded_at_a_larger_scale():
    from starsort import decode
    job = run("SonySLT-A55__DSC3755.JPG", upto="decode")
    pixels, scale = decode.sharper(job, 0.9)
    assert scale == 1.0 and pixels.shape[1] == 4912 and job.detail_scale <= 0.5


def test_a_jpeg_named_nef_is_decoded_as_the_jpeg_it_is():
    job = run("edge_jpeg_named_as_D70s.nef", upto="decode")
    assert job.kind == "jpeg" and job.camera_model == "NIKON D70s"


def test_a_truncated_jpeg_is_bad_input(tmp_path):
    data = (DATA / "SonySLT-A55__DSC3756.JPG").read_bytes()
    p = tmp_path / "cut.JPG"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(BadInput, match="truncated"):
        run(p, upto="decode")


def test_a_truncated_raw_is_bad_input_even_though_its_preview_survives(tmp_path):
    data = (DATA / "two_people.ARW").read_bytes()
    p = tmp_path / "cut.ARW"
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(BadInput, match="truncated"):
        run(p, upto="decode")


def test_a_stripped_raw_is_bad_input_even_after_the_worker_decoded_a_real_one():
    # LibRaw reuses buffers: a stub decoded after a real photo "shows" stale pixels.
    run("two_people.ARW", upto="decode")
    with pytest.raises(BadInput, match="no image data"):
        run("edge_stripped_exiftool.dng", upto="decode")


def test_a_raw_libraw_cannot_read_is_bad_input():
    with pytest.raises(BadInput, match="corrupt raw data|no image data|not a raw"):
        run("edge_stripped_exiftool_Nikon.nef", upto="decode")


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    from starsort.config import Config
    from starsort.job import Job
    from starsort.pipeline import Context
    from starsort import decode
    p = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000)).save(p, quality=50)
    cfg = Config.model_validate({"analysis": {"max_image_pixels": 1_000_000}})
    with pytest.raises(BadInput, match="too large"):
        decode.run(Job(1, str(p), "jpeg"), Context(cfg))
    assert not getattr(__import__("PIL.ImageFile").ImageFile, "LOAD_TRUNCATED_IMAGES")
