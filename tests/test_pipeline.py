"""The whole pipeline on real fixtures, as a user runs it (`starsort run --once`, then the report):
the ratings photographers notice first, and bursts that stay together.

Each test is one run of the service in a subprocess (analysis worker, MTCNN and all): about
10 s here.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from starsort.analysis.phash import hamming
from starsort.config import Config

from .daemon import Daemon
from .helpers import DATA

pytestmark = pytest.mark.e2e

T0 = datetime(2025, 5, 17, 14, 30, 0)


def save(rgb: np.ndarray, path: Path, when: datetime, model: str = "ILCE-7M4") -> None:
    """A camera-like JPEG: EXIF capture time (no sub-seconds) and model."""
    exif = Image.Exif()
    exif[0x0110] = model
    exif.get_ifd(0x8769)[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    Image.fromarray(rgb).save(path, "JPEG", quality=92, exif=exif.tobytes())


def smear(rgb: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Linear motion blur: a straight smear of `length` pixels at `angle` degrees."""
    size = int(length) + 3
    big = np.zeros((size * 8, size * 8), np.float32)
    c = size * 4
    dx, dy = np.cos(np.radians(angle)) * length * 4, -np.sin(np.radians(angle)) * length * 4
    cv2.line(big, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 8)
    k = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.filter2D(rgb, -1, k / k.sum())


def rows_by_name(d: Daemon) -> dict[str, dict]:
    return {Path(r["original_path"]).name: r for r in d.report()}


def test_a_motion_blurred_portrait_gets_two_stars_or_fewer_while_its_sharp_original_gets_four_or_more(tmp_path):
    d = Daemon(tmp_path)
    rgb = np.asarray(Image.open(DATA / "clapton-2.jpg").convert("RGB"))
    face = 141                       # the width of its face, as MTCNN finds it
    save(rgb, d.inbox / "sharp.jpg", T0)
    # The shake that slipped through as 5 stars: a smear an eighth of the face wide, any angle.
    for i, angle in enumerate((0, 30, 60, 90, 135)):
        save(smear(rgb, face / 8, angle), d.inbox / f"shaken_{angle}.jpg", T0 + timedelta(minutes=5 * (i + 1)))
    d.once(ok=True)
    rows = rows_by_name(d)
    assert int(rows["sharp.jpg"]["stars"]) >= 4 and rows["sharp.jpg"]["rated_on"] == "faces"
    for angle in (0, 30, 60, 90, 135):
        row = rows[f"shaken_{angle}.jpg"]
        assert int(row["stars"]) <= 2 and row["rated_on"] == "faces", (angle, row)


def test_a_shifted_burst_frame_joins_its_burst_while_another_photo_of_the_same_scene_does_not(tmp_path):
    d = Daemon(tmp_path)
    rgb = np.asarray(Image.open(DATA / "kit_with_rose.jpg").convert("RGB"))
    h, w = rgb.shape[:2]
    crop = (slice(20, h - 20), slice(20, w - 20))
    save(np.ascontiguousarray(rgb[crop]), d.inbox / "frame1.jpg", T0)
    # The next handheld frame, a second later: 2 % to the side, 2 % down, 10 % brighter.
    m = np.float32([[1, 0, -0.02 * w], [0, 1, 0.02 * h]])
    shifted = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.float32) * 1.1
    save(np.ascontiguousarray(np.clip(shifted, 0, 255).astype(np.uint8)[crop]), d.inbox / "frame2.jpg",
         T0 + timedelta(seconds=1))
    # Twenty seconds later at the same spot, he has stepped 25 px towards her: another photo,
    # though only 4-10 pHash bits from the frames (within cluster.max_distance).
    moved = rgb.copy()
    moved[:, 275:495] = rgb[:, 250:470]
    save(np.ascontiguousarray(moved[crop]), d.inbox / "later.jpg", T0 + timedelta(seconds=20))
    # A real burst of the camera's own: two frames of a Sony A55, 9 s apart.
    for name in ("SonySLT-A55__DSC3755.JPG", "SonySLT-A55__DSC3756.JPG"):
        (d.inbox / name).write_bytes((DATA / name).read_bytes())
    d.once(ok=True)
    rows = rows_by_name(d)
    # Further apart than the old radius (6 bits), which split such frames.
    assert hamming(rows["frame1.jpg"]["phash"], rows["frame2.jpg"]["phash"]) > 6
    assert hamming(rows["frame1.jpg"]["phash"], rows["later.jpg"]["phash"]) <= Config().cluster.max_distance
    cluster = {name: r["cluster_id"] for name, r in rows.items()}
    assert cluster["frame1.jpg"] == cluster["frame2.jpg"] != ""
    assert cluster["later.jpg"] not in ("", cluster["frame1.jpg"])
    assert cluster["SonySLT-A55__DSC3755.JPG"] == cluster["SonySLT-A55__DSC3756.JPG"]
    picks = [name for name in ("frame1.jpg", "frame2.jpg") if rows[name]["is_pick"] == "1"]
    assert len(picks) == 1
