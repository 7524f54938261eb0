"""Rate stage: stars from the faces' scores, or from the frame's when no face counts.

Fills `job.stars`, `job.rated_on`, `job.sharpness` and each face's `skipped`.

The rule is a pure function of stored data: `stars_for(faces, frame_score,
cfg)`, where each face is its (score, judged_px) as the `faces` table and
`photos.face_scores` / `photos.face_px` keep them. The worker rates with it,
and the service can re-rate stored scores with it (a threshold what-if,
`starsort rerate`) without analysing anything again. Nothing here imports
OpenCV or torch.

Which faces count. A face narrower than `blur.min_face_px` in the pixels it
was judged on is too small to judge (its score says more about the pixels
than about focus), and a face narrower than `stars.background_face_ratio` of
the photo's largest face is in the background; both are recorded and
reported as skipped, and neither counts. With no face counted, the photo is
rated on its frame (`rated_on = "frame"`): `stars.frame_sharp_stars` if the
frame score reaches `blur.frame_threshold`, else `stars.frame_blurry_stars`.

With faces counted (`rated_on = "faces"`), a face is blurry below
`blur.threshold`, and:

* `stars.mode: margin` (the default). No blurry face: the margin by which
  the weakest face clears the threshold gives the stars (`stars.margins`:
  100 % or more -> 5, 30 % -> 4, less -> 3), so a portrait that only just
  passes is not filed with the tack-sharp ones. Some blurry: the share of
  blurry faces gives the stars (`stars.mapping`), never more than the
  weakest sharp face's margin gives. A photo whose blurry faces are all
  soft (at least `stars.soft_percent` of the threshold) gets at least 2:
  slightly missed, not lost.
* `stars.mode: share`: the share of blurry faces alone, through
  `stars.mapping` (0 % -> 5, <= 25 % -> 4, <= 50 % -> 3, <= 75 % -> 2, else
  1), so a one-face portrait is 5 or 1.

`sharpness` ranks frames within a burst to choose its pick: the mean score
of the counted faces (the subject is what must be sharp), else the frame
score.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence, Union

from .job import Job

if TYPE_CHECKING:
    from ..config import Config
    from .job import Context

# A face as stored: (score, judged_px); a bare score is a face of unknown size, which counts.
FaceIn = Union[float, None, Sequence[Union[float, None]]]


def stars_for_share(share: float, mapping: Sequence[Sequence[float]]) -> int:
    """Stars for a share (0..1) of blurry faces."""
    pct = share * 100.0
    for limit, stars in mapping:
        # 1 of 4 faces is 25.000000000000004 % in floating point.
        if pct <= limit + 1e-9:
            return int(stars)
    return int(mapping[-1][1])


def stars_for_margin(margin: float, margins: Sequence[Sequence[float]]) -> int:
    """Stars for the margin (0.42 = 42 %) by which the weakest face clears the threshold."""
    pct = margin * 100.0
    for limit, stars in margins:
        if pct >= limit - 1e-9:
            return int(stars)
    return int(margins[-1][1])


@dataclass(frozen=True)
class Verdict:
    """Everything the rule decided, for `explain` and the stage."""
    stars: int
    rated_on: str                                  # "faces" | "frame"
    skipped: list[str | None] = field(default_factory=list)   # per face: None | "small" | "background"
    counted: list[float] = field(default_factory=list)        # scores of the faces that count
    small_px: list[float] = field(default_factory=list)       # widths of the faces too small to judge
    background: int = 0
    margin: float | None = None                    # of the weakest sharp counted face
    soft: bool = False                             # lifted to 2 stars because every blurry face is soft


def _face(f: FaceIn) -> tuple[float, float | None]:
    if isinstance(f, (tuple, list)):
        score = f[0] if len(f) > 0 else None
        px = f[1] if len(f) > 1 else None
    else:
        score, px = f, None
    return float(score or 0.0), (None if px is None else float(px))


def skip_reasons(faces: Sequence[tuple[float, float | None]], cfg: Config) -> list[str | None]:
    """Per face: None when it counts, "small" when too small to judge, "background" when far smaller
    than the photo's largest face."""
    largest = max((px for _, px in faces if px is not None), default=None)
    out: list[str | None] = []
    for _, px in faces:
        if px is None:
            out.append(None)
        elif px < cfg.blur.min_face_px:
            out.append("small")
        elif largest is not None and px < cfg.stars.background_face_ratio * largest:
            out.append("background")
        else:
            out.append(None)
    return out


def verdict(faces: Sequence[FaceIn], frame_score: float | None, cfg: Config) -> Verdict:
    """The rule, with its reasons; see the module docstring."""
    fs = [_face(f) for f in faces]
    reasons = skip_reasons(fs, cfg)
    counted = [s for (s, _), r in zip(fs, reasons) if r is None]
    small = [px for (_, px), r in zip(fs, reasons) if r == "small" and px is not None]
    background = sum(1 for r in reasons if r == "background")
    st = cfg.stars
    if not counted:
        sharp = (frame_score or 0.0) >= cfg.blur.frame_threshold
        return Verdict(st.frame_sharp_stars if sharp else st.frame_blurry_stars, "frame", reasons, [],
                       small, background)
    t = cfg.blur.threshold
    blurry = [s for s in counted if s < t]
    sharp_scores = [s for s in counted if s >= t]
    share = len(blurry) / len(counted)
    margin = (min(sharp_scores) / t - 1.0) if sharp_scores else None
    soft = False
    if st.mode == "share":
        stars = stars_for_share(share, st.mapping)
    elif not blurry:
        stars = stars_for_margin(margin, st.margins)
    else:
        stars = stars_for_share(share, st.mapping)
        if margin is not None:
            stars = min(stars, stars_for_margin(margin, st.margins))
        if stars < 2 and all(s >= st.soft_percent / 100.0 * t for s in blurry):
            stars, soft = 2, True
    return Verdict(stars, "faces", reasons, counted, small, background, margin, soft)


def stars_for(faces: Sequence[FaceIn], frame_score: float | None, cfg: Config) -> tuple[int, str]:
    """(stars, rated_on) from the faces' (score, judged_px) and the frame score alone."""
    v = verdict(faces, frame_score, cfg)
    return v.stars, v.rated_on



def _n(x: float) -> str:
    return f"{x:.1f}"


def explain(faces: Sequence[FaceIn], frame_score: float | None, cfg: Config) -> str:
    """The one-line why of `stars_for`, e.g.
    "2 of 3 faces below 10.0 (4.1, 6.3; sharp 48.2) → 67% blurry → 2★",
    "1 face, 14.2 against 10.0 (margin 42%) → 4★", "no face; frame 3.1 below 10.0 → 1★"."""
    v = verdict(faces, frame_score, cfg)
    t = cfg.blur.threshold
    skipped = _skipped_text(v)
    if v.rated_on == "frame":
        ft = cfg.blur.frame_threshold
        where = "at or above" if (frame_score or 0.0) >= ft else "below"
        head = f"no face counted ({skipped})" if skipped else "no face"
        return f"{head}; frame {_n(frame_score or 0.0)} {where} {_n(ft)} → {v.stars}★"
    n = len(v.counted)
    low = [s for s in v.counted if s < t]
    high = [s for s in v.counted if s >= t]
    if not low:
        which = f"1 face, {_n(high[0])}" if n == 1 else f"{n} faces, weakest {_n(min(high))}"
        text = f"{which} against {_n(t)}"
        if cfg.stars.mode == "margin":
            text += f" (margin {round(100 * v.margin)}%)"
    elif n == 1:
        text = f"1 face, {_n(low[0])} below {_n(t)} → blurry"
        if v.soft:
            text += f" but soft (at least {cfg.stars.soft_percent:g}% of {_n(t)})"
    else:
        parts = ", ".join(_n(s) for s in low)
        if high:
            parts += "; sharp " + ", ".join(_n(s) for s in high)
        text = f"{len(low)} of {n} faces below {_n(t)} ({parts}) → {round(100 * len(low) / n)}% blurry"
        by_share = stars_for_share(len(low) / n, cfg.stars.mapping)
        if cfg.stars.mode == "margin" and v.margin is not None and v.stars < by_share and not v.soft:
            text += f", weakest sharp margin {round(100 * v.margin)}%"
        if v.soft:
            text += f", all soft (at least {cfg.stars.soft_percent:g}% of {_n(t)})"
    text += f" → {v.stars}★"
    return f"{text}; {skipped}" if skipped else text


def _skipped_text(v: Verdict) -> str:
    parts = []
    if v.small_px:
        n = len(v.small_px)
        widths = ", ".join(str(round(px)) for px in sorted(v.small_px, reverse=True))
        parts.append(f"{n} too small to judge ({widths} px)")
    if v.background:
        parts.append(f"{v.background} in the background")
    if not parts:
        return ""
    total = len(v.small_px) + v.background
    return f"{total} {'face' if total == 1 else 'faces'} skipped: " + ", ".join(parts)


def run(job: Job, ctx: Context) -> None:
    v = verdict([(f.blur_score, f.judged_px) for f in job.faces], job.frame_score, ctx.config)
    job.stars, job.rated_on = v.stars, v.rated_on
    for face, reason in zip(job.faces, v.skipped):
        face.skipped = reason
    job.sharpness = sum(v.counted) / len(v.counted) if v.counted else job.frame_score
