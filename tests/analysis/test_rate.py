"""Rate: the share of blurry faces gives the stars; a faceless photo is rated on its frame."""
from __future__ import annotations

import pytest

from starsort.analysis import rate
from starsort.config import Config
from starsort.analysis.job import Face, Job
from starsort.pipeline import Context

from .stages import run

DEFAULT = Config().stars.mapping


@pytest.mark.parametrize("blurry,total,stars", [
    (0, 1, 5), (0, 4, 5),
    (1, 5, 4), (1, 4, 4),                 # 20 %, exactly 25 %
    (1, 3, 3), (2, 4, 3),                 # 33 %, exactly 50 %
    (2, 3, 2), (3, 4, 2),                 # 67 %, exactly 75 %
    (4, 5, 1), (4, 4, 1), (1, 1, 1),      # 80 %, 100 %
])
def test_the_default_mapping_gives_stars_by_the_share_of_blurry_faces(blurry, total, stars):
    assert rate.stars_for_share(blurry / total, DEFAULT) == stars


def test_a_custom_mapping_is_used():
    mapping = [(0.0, 4), (50.0, 2), (100.0, 1)]
    assert [rate.stars_for_share(x, mapping) for x in (0, 0.2, 0.5, 0.9, 1.0)] == [4, 2, 2, 1, 1]


def _job(scores: list[float], frame: float = 50.0) -> Job:
    job = Job(1, "x", "jpeg")
    job.faces = [Face((0, 0, 1, 1), [], 0.99, s, s < 10.0) for s in scores]
    job.frame_score = frame
    return job


def test_a_photo_with_faces_is_rated_on_them_and_its_sharpness_is_their_mean():
    job = _job([30.0, 5.0])
    rate.run(job, Context(Config()))
    assert (job.stars, job.rated_on, job.sharpness) == (3, "faces", 17.5)


def test_the_stars_follow_a_custom_mapping_from_the_config():
    cfg = Config.model_validate({"stars": {"mapping": [[0, 3], [100, 2]]}})
    sharp, mixed = _job([30.0, 40.0]), _job([30.0, 5.0])
    rate.run(sharp, Context(cfg))
    rate.run(mixed, Context(cfg))
    assert (sharp.stars, mixed.stars) == (3, 2)


def test_a_photo_without_faces_is_rated_on_its_frame_and_says_so():
    cfg = Config.model_validate({"stars": {"frame_sharp_stars": 3, "frame_blurry_stars": 2}})
    sharp, soft, edge = _job([], frame=40.0), _job([], frame=3.0), _job([], frame=10.0)
    for job in (sharp, soft, edge):
        rate.run(job, Context(cfg))
    assert (sharp.stars, sharp.rated_on, sharp.sharpness) == (3, "frame", 40.0)
    assert (soft.stars, soft.rated_on) == (2, "frame")
    assert edge.stars == 3                                   # the threshold itself is sharp


def test_a_sharp_photo_outranks_its_defocused_and_motion_blurred_siblings():
    s, f, m = (run(f"106_NIKON-D3400-35MM_{k}.JPG") for k in "SFM")
    assert s.stars > f.stars and s.stars > m.stars
    assert s.sharpness > max(f.sharpness, m.sharpness)


def test_a_sharp_couple_outranks_the_same_couple_out_of_focus():
    sharp, soft = run("two_people.ARW"), run("two_people_defocus.ARW")
    assert sharp.rated_on == soft.rated_on == "faces"
    assert (sharp.stars, soft.stars) == (5, 1)
    assert sharp.sharpness > soft.sharpness


def test_a_sideways_raws_face_is_found_and_rated_on():
    job = run("lennon_rotated.ARW")
    assert len(job.faces) == 1 and job.rated_on == "faces" and job.stars == 5
