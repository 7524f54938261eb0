"""Signature: a thumbnail that confirms a burst match after alignment and exposure, and refutes
another photo of the same spot."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from starsort.analysis import signature
from starsort.config import Config

from ..helpers import DATA
from .stages import run

MAX_CHANGE = Config().cluster.max_change


def photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / name).convert("RGB"))


def handheld(rgb: np.ndarray, dx: float, dy: float, gain: float, turn: float = 0.0) -> np.ndarray:
    """The next frame of a handheld burst: shifted by (dx, dy) of the frame, turned, re-exposed."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0)
    m[:, 2] += (dx * w, dy * h)
    out = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.float32) * gain
    return np.clip(out, 0, 255).astype(np.uint8)


def test_the_stage_keeps_a_96_pixel_grey_thumbnail_of_the_analysis_image():
    job = run("SonySLT-A55__DSC3755.JPG", upto="signature")
    w, h = job.signature[2], job.signature[3]
    assert job.signature[:2] == b"S1" and max(w, h) == signature.SIDE and len(job.signature) == 4 + w * h
    assert abs(w / h - job.image.shape[1] / job.image.shape[0]) < 0.05


def test_two_real_frames_of_a_burst_are_confirmed():
    a, b = (run(f"SonySLT-A55__DSC375{i}.JPG", upto="signature").signature for i in (5, 6))
    assert signature.difference(a, b) <= MAX_CHANGE


@pytest.mark.parametrize("dx,dy,gain,turn", [(0.02, 0.0, 1.1, 0.0), (-0.02, 0.02, 0.9, 0.3), (0.03, -0.01, 1.0, -0.5)])
def test_a_handheld_frame_shifted_turned_and_exposed_differently_is_confirmed(dx, dy, gain, turn):
    rgb = photo("kit_with_rose.jpg")
    assert signature.difference(signature.make(rgb), signature.make(handheld(rgb, dx, dy, gain, turn))) <= MAX_CHANGE


def test_the_same_spot_with_a_person_moved_a_little_is_refuted():
    rgb = photo("kit_with_rose.jpg")
    moved = rgb.copy()
    moved[:, 275:495] = rgb[:, 250:470]                     # he steps 25 px (5 % of the frame) towards her
    assert signature.difference(signature.make(rgb), signature.make(moved)) > MAX_CHANGE


def test_the_same_spot_zoomed_in_is_refuted():
    rgb = photo("SonySLT-A55__DSC3755.JPG")
    h, w = rgb.shape[:2]
    zoomed = cv2.resize(rgb[h // 8:h - h // 8, w // 8:w - w // 8], (w, h), interpolation=cv2.INTER_AREA)
    assert signature.difference(signature.make(rgb), signature.make(zoomed)) > MAX_CHANGE


def test_different_photos_are_far_apart():
    a, b = signature.make(photo("kit_with_rose.jpg")), signature.make(photo("clapton-2.jpg"))
    assert signature.difference(a, b) > MAX_CHANGE


def test_signatures_that_cannot_be_compared_never_confirm_a_match():
    landscape = signature.make(photo("SonySLT-A55__DSC3755.JPG"))
    portrait = signature.make(photo("kit_with_rose.jpg"))
    assert signature.difference(landscape, portrait) == float("inf")
    assert signature.difference(landscape, None) == float("inf")
    assert signature.difference(landscape, b"S1garbage") == float("inf")
