"""Blur: sharp faces score above the threshold, blurred ones below, whatever their size."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from starsort.analysis import blur

from .stages import run

THRESHOLD = 10.0   # the default blur.threshold and blur.frame_threshold


@pytest.mark.parametrize("name", ["two_people.ARW", "lennon_rotated.ARW", "ivan.jpg", "clapton-2.jpg",
                                  "kit_with_rose.jpg", "multiface.jpg"])
def test_sharp_faces_score_above_the_threshold(name):
    job = run(name, upto="blur")
    assert job.faces and all(f.blur_score >= THRESHOLD and f.blurry is False for f in job.faces)


@pytest.mark.parametrize("name", ["two_people_defocus.ARW", "inspireface_blur_face.jpg"])
def test_blurred_faces_score_below_the_threshold(name):
    job = run(name, upto="blur")
    assert job.faces and all(f.blur_score < THRESHOLD and f.blurry is True for f in job.faces)


@pytest.mark.parametrize("name", ["two_people.ARW", "ivan.jpg", "clapton-2.jpg", "multiface.jpg"])
def test_a_gaussian_blurred_copy_of_a_sharp_face_falls_below_the_threshold(name):
    job = run(name, upto="faces")
    pixels, scale = blur.face_pixels(job)
    for f in job.faces:
        box = [v * scale for v in f.box]
        sigma = max(1.0, (box[2] - box[0]) / 60)             # 2.5 px on a 150 px face
        blurred = cv2.GaussianBlur(pixels, (0, 0), sigma)
        assert blur.face_score(blurred, box) < THRESHOLD <= blur.face_score(pixels, box)


def test_a_face_out_of_focus_in_front_of_a_sharp_background_is_blurry():
    # Focus missed behind the subject: only the face is soft, its box's edges are not.
    job = run("two_people.ARW", upto="faces")
    pixels, scale = blur.face_pixels(job)
    for f in job.faces:
        x1, y1, x2, y2 = (v * scale for v in f.box)
        mask = np.zeros(pixels.shape[:2], np.uint8)
        cv2.ellipse(mask, (round((x1 + x2) / 2), round((y1 + y2) / 2)),
                    (round((x2 - x1) * 0.45), round((y2 - y1) * 0.55)), 0, 0, 360, 255, -1)
        soft = cv2.GaussianBlur(pixels, (0, 0), (x2 - x1) / 60)
        mixed = np.where(mask[..., None] > 0, soft, pixels)
        assert blur.face_score(mixed, [x1, y1, x2, y2]) < THRESHOLD


def test_the_face_score_does_not_depend_on_image_resolution():
    job = run("lennon_rotated.ARW", upto="faces")
    pixels, scale = blur.face_pixels(job)
    box = [v * scale for v in job.faces[0].box]
    full = blur.face_score(pixels, box)
    for f in (0.5, 0.25):
        smaller = cv2.resize(pixels, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        assert 0.5 < blur.face_score(smaller, [v * f for v in box]) / full < 2.0


def test_the_sharp_couple_outscores_the_same_couple_out_of_focus():
    sharp = run("two_people.ARW", upto="blur")
    soft = run("two_people_defocus.ARW", upto="blur")
    assert min(f.blur_score for f in sharp.faces) > 10 * max(f.blur_score for f in soft.faces)


def test_a_sharp_frame_outscores_its_defocused_and_motion_blurred_siblings():
    s, f, m = (run(f"106_NIKON-D3400-35MM_{k}.JPG", upto="blur").frame_score for k in "SFM")
    assert s >= THRESHOLD > max(f, m)


@pytest.mark.parametrize("name", ["SonySLT-A55__DSC3755.JPG", "SonySLT-A55__DSC3756.JPG", "two_people.ARW"])
def test_camera_frames_in_focus_come_out_sharp(name):
    assert run(name, upto="blur").frame_score >= THRESHOLD


def test_a_flat_grey_frame_scores_zero():
    assert blur.frame_score(np.full((300, 400, 3), 128, np.uint8)) == 0.0
