"""Rate stage: stars from the share of blurry faces, or from the frame if there is none.

With the default mapping: 0% blurry -> 5, <=25% -> 4, <=50% -> 3, <=75% -> 2,
else 1 (`stars.mapping`). A photo with no face is rated on the frame
(`rated_on = "frame"`): frame_sharp_stars if its frame score reaches
blur.frame_threshold, else frame_blurry_stars.

`sharpness` ranks frames within a burst to choose its pick: the mean face
score when there are faces (the subject is what must be sharp), else the
frame score.
"""
from __future__ import annotations

from .job import Job


def stars_for_share(share: float, mapping: list[tuple[float, int]]) -> int:
    pct = share * 100.0
    for limit, stars in mapping:
        if pct <= limit + 1e-9:
            return stars
    return mapping[-1][1]


def run(job: Job, ctx) -> None:
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
