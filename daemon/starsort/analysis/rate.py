"""Rate stage: stars from the share of blurry faces, or from the frame if there is none.

Fills `job.stars`, `job.rated_on` and `job.sharpness`.

With faces (`rated_on = "faces"`): the first [percent, stars] pair of
`stars.mapping` whose percent is at least the photo's share of blurry faces
gives the stars; by default 0 % blurry -> 5, <= 25 % -> 4, <= 50 % -> 3,
<= 75 % -> 2, else 1. Without faces (`rated_on = "frame"`):
`stars.frame_sharp_stars` if the frame score reaches `blur.frame_threshold`,
else `stars.frame_blurry_stars`.

`sharpness` ranks frames within a burst to choose its pick: the mean face
score when there are faces (the subject is what must be sharp), else the
frame score.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .job import Job

if TYPE_CHECKING:
    from .job import Context


def stars_for_share(share: float, mapping: list[tuple[float, int]]) -> int:
    """Stars for a share (0..1) of blurry faces."""
    pct = share * 100.0
    for limit, stars in mapping:
        # 1 of 4 faces is 25.000000000000004 % in floating point.
        if pct <= limit + 1e-9:
            return stars
    return mapping[-1][1]


def run(job: Job, ctx: Context) -> None:
    cfg = ctx.config
    if job.faces:
        blurry = sum(1 for f in job.faces if f.blurry)
        job.stars = stars_for_share(blurry / len(job.faces), cfg.stars.mapping)
        job.rated_on = "faces"
        job.sharpness = sum(f.blur_score or 0.0 for f in job.faces) / len(job.faces)
    else:
        sharp = (job.frame_score or 0.0) >= cfg.blur.frame_threshold
        job.stars = cfg.stars.frame_sharp_stars if sharp else cfg.stars.frame_blurry_stars
        job.rated_on = "frame"
        job.sharpness = job.frame_score
