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

from typing import TYPE_CHECKING, Sequence

from .job import Job

if TYPE_CHECKING:
    from ..config import Config
    from .job import Context


def stars_for_share(share: float, mapping: list[tuple[float, int]]) -> int:
    """Stars for a share (0..1) of blurry faces."""
    pct = share * 100.0
    for limit, stars in mapping:
        # 1 of 4 faces is 25.000000000000004 % in floating point.
        if pct <= limit + 1e-9:
            return stars
    return mapping[-1][1]


def judge(scores: Sequence[float | None], frame_score: float | None, cfg: Config) -> tuple[int, str]:
    """(stars, rated_on) from the face scores and the frame score alone.

    The one rating rule: the worker rates with it, and the service re-rates
    stored scores with it (a threshold what-if, `starsort rerate`) without
    analysing anything again.
    """
    if scores:
        blurry = sum(1 for s in scores if (s or 0.0) < cfg.blur.threshold)
        return stars_for_share(blurry / len(scores), cfg.stars.mapping), "faces"
    sharp = (frame_score or 0.0) >= cfg.blur.frame_threshold
    return (cfg.stars.frame_sharp_stars if sharp else cfg.stars.frame_blurry_stars), "frame"


def explain(scores: Sequence[float | None], frame_score: float | None, cfg: Config) -> str:
    """The one-line why of `judge`: "2 of 3 faces below 10.0 (4.1, 6.3; sharp 48.2) → 67% blurry → 2★"."""
    stars, rated_on = judge(scores, frame_score, cfg)
    t = cfg.blur.threshold
    if rated_on == "frame":
        ft = cfg.blur.frame_threshold
        where = "at or above" if (frame_score or 0.0) >= ft else "below"
        return f"no face; frame {frame_score or 0.0:.1f} {where} {ft:g} → {stars}★"
    vals = [s or 0.0 for s in scores]
    low = sorted(v for v in vals if v < t)
    high = sorted(v for v in vals if v >= t)
    n = len(vals)
    if not low:
        face = "face" if n == 1 else "faces"
        return f"{n} {face} at or above {t:g} (lowest {min(vals):.1f}) → sharp → {stars}★"
    parts = ", ".join(f"{v:.1f}" for v in low)
    if high:
        parts += f"; sharp {', '.join(f'{v:.1f}' for v in high)}"
    return f"{len(low)} of {n} {'face' if n == 1 else 'faces'} below {t:g} ({parts}) → {round(100 * len(low) / n)}% blurry → {stars}★"


def run(job: Job, ctx: Context) -> None:
    cfg = ctx.config
    job.stars, job.rated_on = judge([f.blur_score for f in job.faces], job.frame_score, cfg)
    if job.faces:
        job.sharpness = sum(f.blur_score or 0.0 for f in job.faces) / len(job.faces)
    else:
        job.sharpness = job.frame_score
