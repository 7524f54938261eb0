"""Embed: a face's vector is close to the same person's in another photo, far from a stranger's."""
from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from starsort.analysis import embed

from .stages import run


def _vectors(name: str) -> list[np.ndarray]:
    job = run(name, upto="embed")
    return [f.embedding for f in sorted(job.faces, key=lambda f: f.box[0])]


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - np.dot(a, b))


def test_the_same_person_in_two_photos_is_within_the_threshold_and_a_stranger_is_not():
    [kit] = _vectors("kit_harington_john2.jpeg")
    [rose] = _vectors("rose_leslie_img1.jpg")
    kit_with_rose = _vectors("kit_with_rose.jpg")
    [clapton] = _vectors("clapton-2.jpg")
    threshold = 0.50                                         # people.threshold's default
    assert min(_distance(kit, v) for v in kit_with_rose) < threshold
    assert min(_distance(rose, v) for v in kit_with_rose) < threshold
    # Each matches their own face in the group photo, not the other's.
    nearest_kit = min(range(2), key=lambda i: _distance(kit, kit_with_rose[i]))
    nearest_rose = min(range(2), key=lambda i: _distance(rose, kit_with_rose[i]))
    assert nearest_kit != nearest_rose
    assert _distance(kit, kit_with_rose[1 - nearest_kit]) > threshold
    for stranger in (clapton, rose):
        assert _distance(kit, stranger) > threshold + 0.1


def test_a_vector_is_128_unit_float32_numbers_and_names_its_model():
    job = run("ivan.jpg", upto="embed")
    [face] = job.faces
    assert face.embedding.dtype == np.float32 and face.embedding.shape == (128,)
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-4)
    assert face.embedded_by == embed.SFace.name
    assert len(face.as_dict()["embedding"]) == 128 * 4


def test_the_face_is_aligned_to_the_template_so_a_rotated_photo_embeds_alike():
    job = run("kit_harington_john2.jpeg", upto="faces")
    [face] = job.faces
    pts = [(x * job.scale, y * job.scale) for x, y in face.landmarks]
    upright = embed.align(job.image, pts)
    assert upright.shape == (112, 112, 3)
    turned = np.ascontiguousarray(np.rot90(job.image))      # the camera held sideways
    h = job.image.shape[0]
    turned_pts = [(y, job.image.shape[1] - 1 - x) for x, y in pts]
    model = embed.SFace()
    d = _distance(model.vector(upright), model.vector(embed.align(turned, turned_pts)))
    assert d < 0.05, d
    assert h > 0


def test_the_shipped_model_is_the_one_its_checksum_names():
    data = resources.files("starsort.analysis").joinpath("models", embed.SFace.FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == embed.SFace.SHA256
    assert resources.files("starsort.analysis").joinpath("models", "LICENSE-Apache-2.0").is_file()
