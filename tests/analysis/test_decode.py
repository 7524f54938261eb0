"""Decode: upright, reduced-size analysis images from JPEGs and raws; bad files refused."""
from __future__ import annotations

import io
import os
from datetime import datetime

import numpy as np
import pytest
from PIL import Image, ImageFile

from starsort.analysis import decode, faces
from starsort.analysis.job import BadInput, Job
from starsort.pipeline import Context

from ..helpers import DATA
from .stages import context, context_with, run


def _eyes_above_mouth(face) -> bool:
    (_, ley), (_, rey), _, (_, lmy), (_, rmy) = face.landmarks
    return max(ley, rey) < min(lmy, rmy)


# ---- orientation ------------------------------------------------------------

def test_a_sideways_raw_is_decoded_upright_from_its_embedded_preview():
    import rawpy
    with rawpy.imread(str(DATA / "lennon_rotated.ARW")) as raw:
        assert raw.sizes.flip == 6                        # the camera was held vertically
        stored_w, stored_h = Image.open(io.BytesIO(raw.extract_thumb().data)).size
    job = run("lennon_rotated.ARW", upto="decode")
    h, w = job.image.shape[:2]
    assert job.decode_source == "raw-preview"
    assert stored_w < stored_h and w > h                  # stored on its side, shown upright
    assert job.original_size == (1600, 1200)              # the raw's 1200x1600, turned
    assert max(h, w) == 1600
    # the preview (2155 px upright) is sharper than the analysis image: kept for blur
    assert job.detail is not None and job.detail.shape[:2] == (1616, 2155)


def test_a_sideways_raws_face_is_found_upright_once_it_is_turned():
    job = run("lennon_rotated.ARW", upto="faces")
    assert len(job.faces) == 1 and _eyes_above_mouth(job.faces[0])
    # The same pixels left on their side: MTCNN misses the face, so the turn is what finds it.
    job.image = np.ascontiguousarray(np.rot90(job.image, 1))
    faces.run(job, context())
    assert job.faces == []


@pytest.mark.parametrize("orientation,turn", [(6, 90), (8, -90), (3, 180)])
def test_exif_orientation_is_applied_to_a_jpeg(tmp_path, orientation, turn):
    upright = Image.open(DATA / "clapton-2.jpg")
    # Store the pixels as a camera would (turned), with the tag that undoes it.
    stored = upright.rotate(turn, expand=True)            # PIL turns counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / "turned.jpg"
    stored.save(p, exif=exif, quality=95)
    job = run(p, upto="faces")
    assert job.original_size == upright.size
    assert job.image.shape[:2] == (upright.height, upright.width)
    assert len(job.faces) == 1 and _eyes_above_mouth(job.faces[0])


# ---- size ---------------------------------------------------------------------

def test_a_jpeg_is_decoded_at_reduced_size_by_dct_scaling_and_keeps_its_exif():
    job = run("SonySLT-A55__DSC3755.JPG", upto="decode")
    assert job.decode_source == "jpeg-draft"
    assert job.original_size == (4912, 3264)
    assert job.image.shape[:2] == (1063, 1600)
    assert job.scale == pytest.approx(1600 / 4912)
    # libjpeg decoded at 1/2 (never the full 16 MP); those pixels are kept for blur.
    assert job.detail.shape[:2] == (3264 // 2, 4912 // 2)
    assert job.detail_scale == pytest.approx(0.5)
    assert job.captured_at == "2022-01-25T12:00:09"
    assert job.camera_model == "SLT-A55V"


def test_the_analysis_size_follows_the_config():
    job = run("SonySLT-A55__DSC3755.JPG", upto="decode", ctx=context_with(analysis={"max_px": 400}))
    # 4912 / 8 = 614 is the smallest DCT scale >= 0.9 * 400; then area-averaged to 400.
    assert max(job.image.shape[:2]) == 400
    assert job.detail.shape[1] == 614


def test_a_small_jpeg_is_not_upscaled():
    job = run("ivan.jpg", upto="decode")
    assert job.image.shape[:2] == (561, 561)
    assert job.scale == 1.0 and job.detail is None


def test_small_faces_can_be_cropped_from_a_sharper_decode():
    job = run("SonySLT-A55__DSC3755.JPG", upto="decode")
    pixels, scale = decode.sharper(job, 0.9)
    assert scale == 1.0 and pixels.shape[:2] == (3264, 4912)
    # already sharp enough: no second decode
    assert decode.sharper(job, 0.3)[0] is job.detail


# ---- raw paths ------------------------------------------------------------------

def test_a_raw_with_a_large_preview_is_decoded_from_the_preview():
    job = run("two_people.ARW", upto="decode")
    assert job.decode_source == "raw-preview"
    assert job.original_size == (2000, 1174)
    assert job.image.shape[:2] == (940, 1600)
    assert job.scale == pytest.approx(0.8)
    assert job.captured_at == "2024-05-01T10:00:01" and job.camera_model == "ILCE-7M3"


def test_a_raw_with_only_a_tiny_preview_falls_back_to_a_half_size_demosaic():
    import rawpy
    with rawpy.imread(str(DATA / "KodakDC120_P003913.KDC")) as raw:
        assert max(raw.extract_thumb().data.shape[:2]) < 1000      # an 80x60 bitmap
    job = run("KodakDC120_P003913.KDC", upto="decode")
    assert job.decode_source == "raw-half"
    # 848x976 sensor with pixels 1.53 times wider than tall: LibRaw stretches them.
    assert job.original_size == (1301, 976)
    assert job.image.shape[:2] == (488, 651) and job.image.max() > 0
    assert job.scale == pytest.approx(0.5, abs=0.001)
    assert job.camera_model == "Kodak DC120 ZOOM Digital Camera"
    assert job.captured_at == "1994-01-02T15:57:56"          # through exiv2, which reads KDC


def test_a_photo_without_a_capture_date_gets_its_mtime(tmp_path):
    p = tmp_path / "no_exif.jpg"
    p.write_bytes((DATA / "clapton-2.jpg").read_bytes())
    when = datetime(2021, 6, 5, 4, 3, 2).timestamp()
    os.utime(p, (when, when))
    assert run(p, upto="decode").captured_at == "2021-06-05T04:03:02"


# ---- bad input ------------------------------------------------------------------

def test_a_truncated_jpeg_is_bad_input(tmp_path):
    data = (DATA / "SonySLT-A55__DSC3756.JPG").read_bytes()
    p = tmp_path / "cut.JPG"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(BadInput, match="truncated JPEG"):
        run(p, upto="decode")


def test_a_jpeg_whose_end_was_overwritten_with_zeros_is_bad_input(tmp_path):
    # A copy cut short into a preallocated file: libjpeg decodes the zeros
    # as image data and Pillow accepts it; the missing end marker gives it away.
    data = (DATA / "SonySLT-A55__DSC3756.JPG").read_bytes()
    main_end = data.index(b"\xff\xd9", len(data) // 2)   # past the EXIF thumbnail's EOI
    p = tmp_path / "zeroed.jpg"
    p.write_bytes(data[: main_end - 100] + bytes(len(data) - main_end + 100))
    with Image.open(p, formats=["JPEG"]) as im:
        im.load()
    with pytest.raises(BadInput, match="no end-of-image marker"):
        run(p, upto="decode")


def test_bytes_after_the_end_marker_are_fine(tmp_path):
    # Sony pads with 0xFF (this file: 34 KB); motion photos append a video.
    data = (DATA / "SonySLT-A55__DSC3755.JPG").read_bytes()
    assert data.rstrip(b"\xff").endswith(b"\xd9") and not data.endswith(b"\xff\xd9")
    p = tmp_path / "trailer.jpg"
    p.write_bytes((DATA / "ivan.jpg").read_bytes() + b"\x00\x00\x00\x18ftypmp42" + bytes(5000))
    assert run(p, upto="decode").image.shape[:2] == (561, 561)


def test_a_file_that_is_not_a_jpeg_is_bad_input(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("not a picture")
    ctx = context()
    with pytest.raises(BadInput, match="not a JPEG"):
        decode.run(Job(1, str(p), "jpeg"), ctx)


def test_a_truncated_raw_is_bad_input_even_though_its_preview_survives(tmp_path):
    data = (DATA / "two_people.ARW").read_bytes()
    p = tmp_path / "cut.ARW"
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(BadInput, match="truncated"):
        run(p, upto="decode")


def test_a_raw_with_no_image_data_is_bad_input():
    with pytest.raises(BadInput, match="no image data"):
        run("edge_stripped_exiftool.dng", upto="decode")


def test_a_stripped_raw_is_bad_input_even_after_the_worker_decoded_a_real_one():
    # LibRaw reuses buffers: a stub decoded after a real photo can "show" stale pixels.
    run("two_people.ARW", upto="decode")
    with pytest.raises(BadInput, match="no image data"):
        run("edge_stripped_exiftool.dng", upto="decode")


def test_a_raw_libraw_cannot_read_is_bad_input_with_the_reason():
    with pytest.raises(BadInput, match="corrupt raw data|no image data|not a raw"):
        run("edge_stripped_exiftool_Nikon.nef", upto="decode")


def test_a_jpeg_named_nef_is_decoded_as_the_jpeg_it_is():
    job = run("edge_jpeg_named_as_D70s.nef", upto="decode")
    assert job.kind == "jpeg" and job.camera_model == "NIKON D70s"
    assert job.captured_at == "2010-03-01T21:50:21"


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    p = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000)).save(p, quality=50)
    ctx = context_with(analysis={"max_image_pixels": 1_000_000})
    with pytest.raises(BadInput, match="too large"):
        decode.run(Job(1, str(p), "jpeg"), ctx)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_a_vanished_file_is_not_blamed_on_the_file(tmp_path):
    # BadInput would quarantine it; the worker reports FileNotFoundError as "vanished".
    with pytest.raises(FileNotFoundError):
        decode.run(Job(1, str(tmp_path / "gone.ARW"), "raw"), Context(context().config))


def _jpeg_with_exif(path, original: str | None, subsec: str | None) -> None:
    exif = Image.Exif()
    exif[0x0110] = "ILCE-7M4"
    if original is not None:
        exif.get_ifd(0x8769)[0x9003] = original
    if subsec is not None:
        exif.get_ifd(0x8769)[0x9291] = subsec
    Image.new("RGB", (64, 48), (90, 120, 150)).save(path, "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize("subsec,digits", [("35", "35"), ("5", "5"), ("042 ", "042"), ("  ", None), ("ab", None)])
def test_sub_seconds_of_the_capture_time_are_read_as_the_camera_wrote_them(tmp_path, subsec, digits):
    p = tmp_path / "burst.jpg"
    _jpeg_with_exif(p, "2025:05:17 14:30:02", subsec)
    job = Job(1, str(p), "jpeg")
    decode.run(job, context())
    assert (job.captured_at, job.captured_subsec) == ("2025-05-17T14:30:02", digits)


def test_sub_seconds_without_a_capture_date_are_ignored_since_the_mtime_takes_its_place(tmp_path):
    p = tmp_path / "nodate.jpg"
    _jpeg_with_exif(p, None, "35")
    job = Job(1, str(p), "jpeg")
    decode.run(job, context())
    assert job.captured_subsec is None
