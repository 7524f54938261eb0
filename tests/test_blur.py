"""Blur: sharp faces score above the threshold, blurred ones below, whatever their size."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from starsort import blur

from .analysis_helpers import run


@pytest.mark.parametrize("name", ["two_people.ARW", "ivan.jpg", "clapton-2.jpg", "kit_with_rose.jpg"])
def test_sharp_faces_score_above_the_threshold(name):
    job = run(name, upto="blur")
    assert job.faces and all(f.blur_score >= 10.0 and not f.blurry for f in job.faces)


@pytest.mark.parametrize("name", ["two_people_defocus.ARW", "inspireface_blur_face.jpg"])
def test_blurred_faces_score_below_the_threshold(name):
    job = run(name, upto="blur")
    assert job.faces and all(f.blurry for f in job.faces)


@pytest.mark.parametrize("name", ["ivan.jpg", "clapton-2.jpg", "two_people.ARW"])
def test_a_gaussian_blurred_copy_of_a_sharp_face_falls_below_the_threshold(name):
    job = run(name, upto="blur")
    pixels = job.detail
    for f in job.faces:
        box = [v * job.detail_scale for v in f.box]
        sigma = max(1.0, (box[2] - box[0]) / 60)
        blurred = cv2.GaussianBlur(pixels, (0, 0), sigma)
        assert blur.face_score(blurred, box) < 10.0 <= blur.face_score(pixels, box)


def test_the_face_score_does_not_depend_on_image_resolution():
    job = run("two_people.ARW", upto="faces")
    box = [v * job.detail_scale for v in job.faces[0].box]
    full = blur.face_score(job.detail, box)
    half = cv2.resize(job.detail, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    halved = blur.face_score(half, [v / 2 for v in box])
    assert halved >= 10.0 and 0.5 < halved / full < 2.5


def test_a_sharp_frame_outscores_its_defocused_and_motion_blurred_siblings():
    s, f, m = (run(f"106_NIKON-D3400-35MM_{k}.JPG", upto="blur").frame_score for k in "SFM")
    assert s >= 10.0 > max(f, m)


def test_a_flat_grey_frame_scores_zero():
    assert blur.frame_score(np.full((300, 400, 3), 128, np.uint8)) == 0.0
