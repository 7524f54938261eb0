"""Faces: MTCNN finds every face, and boxes are in original-image pixels."""
from __future__ import annotations

import numpy as np
import pytest

from starsort.analysis import faces
from starsort.config import Config
from starsort.analysis.job import Job
from starsort.pipeline import Context

from .stages import context, context_with, run


def test_a_group_photo_has_each_of_its_faces_found():
    assert len(run("multiface.jpg", upto="faces").faces) == 6
    assert len(run("kit_with_rose.jpg", upto="faces").faces) == 2


def test_a_photo_without_people_has_no_face():
    assert run("no-faces.jpg", upto="faces").faces == []


def test_boxes_and_landmarks_are_in_original_pixels_whatever_the_analysis_size():
    full = run("two_people.ARW", upto="faces")                 # analysed at 1600 px
    small = run("two_people.ARW", upto="faces", ctx=context_with(analysis={"max_px": 800}))
    assert full.original_size == small.original_size == (2000, 1174)
    assert small.scale == pytest.approx(full.scale / 2)
    assert len(full.faces) == len(small.faces) == 2
    for a, b in zip(sorted(full.faces, key=lambda f: f.box[0]), sorted(small.faces, key=lambda f: f.box[0])):
        width = a.box[2] - a.box[0]
        assert width > 150                                   # raw pixels, not 1600-px ones
        assert np.allclose(a.box, b.box, atol=0.08 * width)
        assert np.allclose(a.landmarks, b.landmarks, atol=0.05 * width)


def test_boxes_are_clipped_to_the_image_and_hold_their_landmarks():
    job = run("multiface.jpg", upto="faces")
    w, h = job.original_size
    for f in job.faces:
        x1, y1, x2, y2 = f.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert len(f.landmarks) == 5
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in f.landmarks)
        assert f.probability >= context().config.faces.min_confidence


def test_detections_below_the_confidence_threshold_are_dropped():
    strict = context_with(faces={"min_confidence": 1.0})
    assert run("kit_with_rose.jpg", upto="faces", ctx=strict).faces == []


def test_the_detector_is_loaded_once_and_then_reused():
    ctx = Context(Config())
    job = Job(1, "tiny", "jpeg")
    job.image = np.zeros((60, 80, 3), np.uint8)
    faces.run(job, ctx)
    detector = ctx.models["mtcnn"]
    faces.run(job, ctx)
    assert ctx.models["mtcnn"] is detector


def test_an_image_smaller_than_the_smallest_face_has_no_face():
    # MTCNN itself raises on an image it cannot build a pyramid for.
    job = Job(1, "tiny", "jpeg")
    job.image = np.full((20, 30, 3), 128, np.uint8)
    faces.run(job, context())
    assert job.faces == []
