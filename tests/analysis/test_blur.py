"""Blur: sharp faces score above the threshold; defocused, motion-blurred and shaken ones below,
whatever their size and the direction of the blur."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from starsort.analysis import blur
from starsort.config import Config

from .stages import run

THRESHOLD = 10.0   # the default blur.threshold and blur.frame_threshold
MIN_FACE = Config().blur.min_face_px
ANGLES = [0, 22.5, 45, 67.5, 90, 112.5, 135, 157.5]


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A straight smear of `length` pixels at `angle` degrees, anti-aliased."""
    k = np.zeros((int(length) + 3, int(length) + 3), np.float32)
    c = (k.shape[1] - 1) / 2
    big = np.zeros((k.shape[0] * 8, k.shape[1] * 8), np.float32)
    dx, dy = np.cos(np.radians(angle)) * length / 2 * 8, -np.sin(np.radians(angle)) * length / 2 * 8
    cv2.line(big, (round(c * 8 + 4 - dx), round(c * 8 + 4 - dy)), (round(c * 8 + 4 + dx), round(c * 8 + 4 + dy)),
             1.0, 8)
    k = cv2.resize(big, k.shape[::-1], interpolation=cv2.INTER_AREA)
    return k / k.sum()


def judged_faces(name: str):
    """The fixture's faces large enough to judge, with the pixels blur measures them on."""
    job = run(name, upto="faces")
    pixels, scale = blur.face_pixels(job)
    boxes = [[v * scale for v in f.box] for f in job.faces]
    return pixels, [b for b in boxes if b[2] - b[0] >= MIN_FACE]


@pytest.mark.parametrize("name", ["two_people.ARW", "lennon_rotated.ARW", "clapton-2.jpg"])
def test_sharp_faces_large_enough_to_judge_score_above_the_threshold(name):
    job = run(name, upto="blur")
    assert job.faces and all(f.judged_px >= MIN_FACE for f in job.faces)
    assert all(f.blur_score >= THRESHOLD and f.blurry is False for f in job.faces)


@pytest.mark.parametrize("name", ["kit_with_rose.jpg", "multiface.jpg"])
def test_sharp_faces_a_little_small_to_judge_still_score_above_the_threshold(name):
    # 70-94 px faces of web-sized photos: skipped by the rating, measured all the same.
    job = run(name, upto="blur")
    assert job.faces and all(f.blur_score >= THRESHOLD for f in job.faces)


@pytest.mark.parametrize("name", ["two_people.ARW", "lennon_rotated.ARW", "clapton-2.jpg"])
def test_a_face_smeared_by_an_eighth_of_its_width_falls_below_the_threshold_at_every_angle(name):
    pixels, boxes = judged_faces(name)
    for box in boxes:
        length = (box[2] - box[0]) / 8
        for angle in ANGLES:
            smeared = cv2.filter2D(pixels, -1, motion_kernel(length, angle))
            assert blur.face_score(smeared, box) < THRESHOLD <= blur.face_score(pixels, box), angle


def high_iso(pixels: np.ndarray, sigma: float = 4.0, seed: int = 0) -> np.ndarray:
    """`pixels` with a camera's noise at high ISO: `sigma` levels of 255 in luminance, half in colour."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, sigma, pixels.shape[:2])[..., None] + rng.normal(0, sigma / 2, pixels.shape)
    return np.clip(pixels.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["two_people.ARW", "lennon_rotated.ARW", "clapton-2.jpg"])
def test_high_iso_noise_neither_makes_a_blurred_face_sharp_nor_a_sharp_one_blurry(name):
    # Noise is fine detail of its own: read as the face's, it lifted smeared and defocused
    # faces over the threshold. Its floor, measured in the flattest blocks around the face, is
    # not counted.
    pixels, boxes = judged_faces(name)
    for box in boxes:
        w = box[2] - box[0]
        smeared = cv2.filter2D(pixels, -1, motion_kernel(w / 11, 45))
        defocused = cv2.GaussianBlur(pixels, (0, 0), w / 28)
        assert blur.face_score(high_iso(smeared), box) < THRESHOLD
        assert blur.face_score(high_iso(defocused), box) < THRESHOLD
        assert blur.face_score(high_iso(pixels), box) >= THRESHOLD


def test_without_its_noise_floor_a_noisy_blurred_face_would_pass_for_sharp():
    pixels, boxes = judged_faces("clapton-2.jpg")
    box = boxes[0]
    noisy = high_iso(cv2.GaussianBlur(pixels, (0, 0), (box[2] - box[0]) / 28), sigma=8.0)
    assert blur.face_scores(noisy, box).score >= THRESHOLD > blur.face_score(noisy, box)


def test_the_laplacian_alone_misses_a_smear_that_the_weakest_direction_catches():
    # What the old score (the Laplacian's variance) did: a horizontal smear keeps every
    # vertical edge, so its isotropic part stays well above the threshold.
    pixels, boxes = judged_faces("lennon_rotated.ARW")
    box = boxes[0]
    s = blur.face_scores(cv2.filter2D(pixels, -1, motion_kernel((box[2] - box[0]) / 16, 0)), box)
    assert s.iso >= THRESHOLD > s.dir == s.score


@pytest.mark.parametrize("name", ["two_people_defocus.ARW", "inspireface_blur_face.jpg"])
def test_blurred_faces_score_below_the_threshold(name):
    job = run(name, upto="blur")
    assert job.faces and all(f.blur_score < THRESHOLD and f.blurry is True for f in job.faces)


@pytest.mark.parametrize("name", ["two_people.ARW", "lennon_rotated.ARW", "clapton-2.jpg"])
def test_a_gaussian_blurred_copy_of_a_sharp_face_falls_below_the_threshold(name):
    pixels, boxes = judged_faces(name)
    for box in boxes:
        sigma = (box[2] - box[0]) / 60                      # 2.5 px on a 150 px face
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
