"""Rate: the weakest face's margin and the share of blurry faces give the stars; faces too small
to judge or in the background do not count; a photo with no face counted is rated on its frame."""
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
    cfg = Config.model_validate({"stars": {"mode": "share", "mapping": [[0, 3], [100, 2]]}})
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
    assert sharp.stars >= 4 and soft.stars == 1
    assert sharp.sharpness > soft.sharpness


def test_a_sideways_raws_face_is_found_and_rated_on():
    job = run("lennon_rotated.ARW")
    assert len(job.faces) == 1 and job.rated_on == "faces" and job.stars == 5


# ---- margin mode, one rule for the worker and for stored scores --------------------------------

CFG = Config()          # threshold 10, margins 100 % -> 5, 20 % -> 4, else 3; soft from 1.2 %; min face 72 px


@pytest.mark.parametrize("score,stars", [(25.0, 5), (20.0, 5), (14.2, 4), (12.0, 4), (11.9, 3), (10.0, 3),
                                         (9.9, 2), (0.12, 2), (0.11, 1)])
def test_a_one_face_portrait_is_graded_by_its_margin_over_the_threshold(score, stars):
    assert rate.stars_for([(score, 300.0)], 50.0, CFG) == (stars, "faces")


def test_the_weakest_counted_face_sets_the_top_band_and_the_share_of_blurry_faces_the_lower_ones():
    assert rate.stars_for([(40.0, 200), (13.0, 200)], 50.0, CFG)[0] == 4          # weakest 30 % over
    assert rate.stars_for([(40.0, 200), (40.0, 200), (40.0, 200), (2.0, 200)], 50.0, CFG)[0] == 4   # 25 %
    assert rate.stars_for([(40.0, 200), (11.0, 200), (40.0, 200), (2.0, 200)], 50.0, CFG)[0] == 3   # capped
    assert rate.stars_for([(40.0, 200), (4.1, 200), (6.3, 200)], 50.0, CFG)[0] == 2                 # 67 %
    assert rate.stars_for([(0.1, 200), (0.2, 200)], 50.0, CFG)[0] == 1


def test_share_mode_keeps_the_seed_rule_a_portrait_is_five_or_one():
    cfg = Config.model_validate({"stars": {"mode": "share"}})
    assert [rate.stars_for([(s, 300.0)], 50.0, cfg)[0] for s in (10.5, 300.0, 9.0, 0.5)] == [5, 5, 1, 1]


def test_a_face_too_small_to_judge_is_recorded_but_the_photo_is_rated_on_its_frame():
    faces = [(0.4, 33.0), (0.5, 30.0)]                   # a sharp snapshot of a group, web-sized
    assert rate.stars_for(faces, 57.0, CFG) == (CFG.stars.frame_sharp_stars, "frame")
    v = rate.verdict(faces, 57.0, CFG)
    assert v.skipped == ["small", "small"] and v.counted == []
    # Counted, their 30 px would have made the sharp snapshot a miss.
    assert rate.stars_for(faces, 57.0, Config.model_validate({"blur": {"min_face_px": 0}}))[0] <= 2


def test_a_soft_face_in_the_background_does_not_pull_a_sharp_subject_down():
    subject, passer_by = (45.0, 400.0), (1.2, 150.0)
    assert rate.stars_for([subject, passer_by], 30.0, CFG) == (5, "faces")
    assert rate.verdict([subject, passer_by], 30.0, CFG).skipped == [None, "background"]


def test_a_soft_subject_in_front_of_a_sharp_background_face_is_still_a_miss():
    # Focus landed behind the subject: the large face counts, the small sharp one does not rescue it.
    assert rate.stars_for([(0.1, 400.0), (60.0, 150.0)], 30.0, CFG) == (1, "faces")


def test_faces_of_unknown_size_count_so_bare_stored_scores_still_rate():
    assert rate.stars_for([25.0, 4.0], 10.0, CFG) == (3, "faces")
    assert rate.stars_for([25.0], None, CFG) == (5, "faces")


def test_the_stage_marks_skipped_faces_and_ranks_the_frame_by_the_counted_faces_only():
    job = Job(1, "x", "jpeg")
    job.faces = [Face((0, 0, 400, 400), [], 0.99, 30.0, False, judged_px=400.0),
                 Face((0, 0, 40, 40), [], 0.99, 1.0, True, judged_px=40.0)]
    job.frame_score = 12.0
    rate.run(job, Context(CFG))
    assert [f.skipped for f in job.faces] == [None, "small"]
    assert (job.stars, job.rated_on, job.sharpness) == (5, "faces", 30.0)


@pytest.mark.parametrize("faces,frame,text", [
    ([(4.1, 200), (6.3, 200), (48.2, 200)], 20.0, "2 of 3 faces below 10.0 (4.1, 6.3; sharp 48.2) → 67% blurry → 2★"),
    ([(40.0, 200), (11.0, 200), (40.0, 200), (2.0, 200)], 20.0,
     "1 of 4 faces below 10.0 (2.0; sharp 40.0, 11.0, 40.0) → 25% blurry, weakest sharp margin 10% → 3★"),
    ([(14.2, 200)], 20.0, "1 face, 14.2 against 10.0 (margin 42%) → 4★"),
    ([], 3.1, "no face; frame 3.1 below 10.0 → 1★"),
    ([(0.5, 40), (0.4, 33)], 57.3, "no face counted (2 faces skipped: 2 too small to judge (40, 33 px)); "
                                   "frame 57.3 at or above 10.0 → 4★"),
    ([(45.0, 400), (1.2, 150)], 30.0, "1 face, 45.0 against 10.0 (margin 350%) → 5★; "
                                      "1 face skipped: 1 in the background"),
    ([(0.9, 300)], 30.0, "1 face, 0.9 below 10.0 → blurry but soft (at least 1.2% of 10.0) → 2★"),
    ([(0.05, 300)], 30.0, "1 face, 0.1 below 10.0 → blurry → 1★"),
])
def test_the_why_of_a_rating_fits_on_one_line(faces, frame, text):
    assert rate.explain(faces, frame, CFG) == text


def test_a_real_photo_whose_only_face_is_too_small_to_judge_is_rated_on_its_frame():
    job = run("ivan.jpg")                                   # a 561 px photo, a 52 px face
    assert [f.skipped for f in job.faces] == ["small"]
    assert job.rated_on == "frame" and job.stars == CFG.stars.frame_sharp_stars
