"""Faces: MTCNN finds every face, and boxes are in original-image pixels."""
from __future__ import annotations

from .analysis_helpers import run


def test_a_group_photo_has_its_two_faces_found():
    assert len(run("kit_with_rose.jpg", upto="faces").faces) == 2


def test_a_photo_without_people_has_no_face():
    assert run("no-faces.jpg", upto="faces").faces == []


def test_boxes_and_landmarks_are_mapped_back_to_the_original_resolution():
    job = run("SonySLT-A55__DSC3755.JPG", upto="decode")
    assert job.scale < 0.5                         # analysed at reduced size
    job = run("two_people.ARW", upto="faces")
    w, h = job.original_size
    assert (w, h) == (2000, 1174)
    for f in job.faces:
        x1, y1, x2, y2 = f.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in f.landmarks)
        assert f.probability >= 0.9
    # the preview is 1616 px wide, the raw 2000: boxes are in raw pixels, not preview pixels
    assert max(f.box[2] for f in job.faces) > 1616 * 0.5
