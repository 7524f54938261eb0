"""Blur stage: how sharp each face is, and the whole frame.

Fills, for every face in `job.faces`, `face.blur_score` (what
`blur.threshold` is compared against), its two parts `face.iso_score` and
`face.dir_score`, `face.judged_px` (the face's width in the pixels it was
measured on, which says whether it is large enough to judge) and
`face.blurry` (score < `blur.threshold`); and `job.frame_score` for every
photo.

Which pixels: the *inner* face (the middle 70 % of the MTCNN box each way:
eyes, nose, mouth), cropped from the best-resolution pixels there are
(`job.detail`, or a sharper decode when the face is small there), converted
to grey and resized to a fixed 96x96 in floating point, so the score depends
on blur relative to the face's size, not on the image's resolution or the
face's size. The inner face, not the whole box, because the box's edges show
background: with them, a face blurred in front of a sharp background (focus
missed behind the subject, the classic portrait failure) still scored sharp
in 86 % of our cases; without them, 3 %.

The score is the lower of two measures of that crop, so a face is sharp only
if both agree:

* `iso`: the variance of the Laplacian, times ISO_SCALE. Defocus flattens it.
  Alone it misses camera shake: the Laplacian adds the second derivatives of
  all directions, and a face smeared sideways keeps all its detail across
  the smear (smears of an eighth of the face width scored 10-50, 5 stars).
* `dir`: the mean squared second derivative along the face's *weakest*
  direction (every 3 degrees), times DIR_SCALE. Motion blur and shake
  flatten the derivative along the smear; defocus flattens it everywhere.

Both less their noise floor (`noise_floor`): what sensor noise alone gives,
measured in the flattest blocks around the face at the face's scale. Noise
is fine detail of its own: without the floor, noise of 4 levels of 255
(high ISO) kept only 35-45 % of blurred faces at 2 stars or less.

The scales come from the tuning part of the labelled blur set
(bench/calibrate_blur.py; the held-out part is never read for this):
DIR_SCALE puts `blur.threshold` (10.0) in the geometric middle between the
sharp faces' 3rd percentile and the blurred faces' 99th of the unscaled
weakest-direction energy less its floor (faces of 72 px and more: 17.5 and
10.1, 0.75); ISO_SCALE keeps its ratio to DIR_SCALE. The combined score of
faces of 72 px and more, per kind:

    sharp originals                                   10.6 .. 159, median 36.3
    defocus, sigma = face width / 40 .. / 15           0 .. 0.55 (/15: at most 0.074)
    mild defocus, sigma = face width / 60              0.21 .. 1.28
    motion, length face width / 16 .. / 6, 8 angles    0 .. 15.3 (/16: 97.8 % below 10)
    hand-shake trajectories and the real shake kernel  0.06 .. 9.6

Frame score (for photos with no face counted): the Laplacian cannot tell motion
blur from detail (a frame shaken sideways keeps its vertical edges), so the frame
is measured by the *weakest direction* of the second derivative (horizontal,
vertical and both diagonals), on a 4x4 grid of tiles, keeping the sharpest
tile: one sharp region is enough, so shallow depth of field is not punished.
Measured at a fixed 768 px long side and scaled by FRAME_SCALE so 10.0 puts
blur/106_*_S (231) above and its _F (3.6) and _M (6.5) siblings below; the
Sony camera JPEGs score 26 to 123 (one soft 2002 compact, DSC-P5, 1.5).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from . import decode
from .job import Job

if TYPE_CHECKING:
    from .job import Context

log = logging.getLogger(__name__)

FACE_SIZE = 96
FACE_INSET = 0.15          # of the box's width/height, from each side
ISO_SCALE = 0.29           # variance of the Laplacian -> the isotropic score
DIR_SCALE = 0.75           # weakest directional second-derivative energy -> the directional score
FRAME_LONG_SIDE = 768
FRAME_GRID = 4
FRAME_SCALE = 0.5
# The noise floor: blocks of NOISE_BLOCK px (at the face's scale) around the face, up to
# NOISE_REACH face sizes away; the NOISE_PERCENTILE-th flattest block's energy.
NOISE_BLOCK = 32
NOISE_REACH = 1.0
NOISE_PERCENTILE = 10

_DIRECTIONS = [
    np.array([[0, 0, 0], [1, -2, 1], [0, 0, 0]], np.float64),
    np.array([[0, 1, 0], [0, -2, 0], [0, 1, 0]], np.float64),
    np.array([[1, 0, 0], [0, -2, 0], [0, 0, 1]], np.float64) / 2,
    np.array([[0, 0, 1], [0, -2, 0], [1, 0, 0]], np.float64) / 2,
]


# The directional second derivative d2/dt2 = c^2 d2/dx2 + 2cs d2/dxdy + s^2 d2/dy2
# (c, s = cos, sin of t) is evaluated from three filtered images; its energy
# is a quartic in (c, s), so every angle costs six sums, not a filter each.
_DXX = np.array([[0, 0, 0], [1, -2, 1], [0, 0, 0]], np.float32)
_DYY = np.ascontiguousarray(_DXX.T)
_DXY = np.array([[1, 0, -1], [0, 0, 0], [-1, 0, 1]], np.float32) / 4
_T = np.deg2rad(np.arange(0.0, 180.0, 3.0))
_C2, _CS2, _S2 = np.cos(_T) ** 2, 2 * np.cos(_T) * np.sin(_T), np.sin(_T) ** 2


class FaceScore(NamedTuple):
    score: float      # min(iso, dir): what blur.threshold is compared against
    iso: float        # variance of the Laplacian, scaled: low when the face is defocused
    dir: float        # energy in the weakest direction, scaled: low when any direction lost its detail


def run(job: Job, ctx: Context) -> None:
    threshold = ctx.config.blur.threshold
    if job.faces:
        pixels, scale = face_pixels(job)
        gray = _gray(pixels)
        for face in job.faces:
            box = [v * scale for v in face.box]
            s = face_scores(gray, box, noise_floor(gray, box))
            face.blur_score, face.iso_score, face.dir_score = s.score, s.iso, s.dir
            face.judged_px = box[2] - box[0]
            face.blurry = s.score < threshold
    job.frame_score = frame_score(job.image)


def face_pixels(job: Job) -> tuple[np.ndarray, float]:
    """The pixels to crop `job.faces` from, and their scale (pixels per original pixel)."""
    pixels, scale = job.detail, job.detail_scale
    if pixels is None:
        pixels, scale = job.image, job.scale
    # An inner face narrower than FACE_SIZE in these pixels would be
    # upscaled, which blurs it: fetch sharper pixels (JPEGs decode again at a
    # larger DCT scale; only photos with small faces pay for it).
    inner = min(f.box[2] - f.box[0] for f in job.faces) * (1 - 2 * FACE_INSET)
    if inner * scale < FACE_SIZE:
        pixels, scale = decode.sharper(job, FACE_SIZE / max(inner, 1.0))
    return pixels, scale


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def face_score(rgb: np.ndarray, box: list[float] | tuple[float, ...]) -> float:
    """The face's score, as the stage gives it (see `face_scores` and `noise_floor`)."""
    return face_scores(rgb, box, noise_floor(rgb, box)).score


def face_scores(rgb: np.ndarray, box: list[float] | tuple[float, ...],
                floor: tuple[float, float] = (0.0, 0.0)) -> FaceScore:
    """Normalised sharpness of the face whose box (x1, y1, x2, y2) is in `rgb`'s pixels, less
    `floor` (the energies noise alone gives there, unscaled: see `noise_floor`)."""
    crop = _inner_face(rgb, box)
    if crop is None:
        return FaceScore(0.0, 0.0, 0.0)
    # Resized in floating point: 8-bit rounding alone puts a floor of about
    # 0.5 under the directional energy, which hides how blurred a face is.
    crop = cv2.resize(crop, (FACE_SIZE, FACE_SIZE), interpolation=_interp(crop.shape))
    iso = max(0.0, float(cv2.Laplacian(crop, cv2.CV_32F).var()) - floor[0]) * ISO_SCALE
    dir_ = max(0.0, weakest_direction(crop) - floor[1]) * DIR_SCALE
    return FaceScore(min(iso, dir_), iso, dir_)


def _inner_face(rgb: np.ndarray, box: list[float] | tuple[float, ...]) -> np.ndarray | None:
    """The middle of the face box, grey, in floating point (None when under 4 px)."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * FACE_INSET, (y2 - y1) * FACE_INSET
    x1, y1 = max(0, int(round(x1 + dx))), max(0, int(round(y1 + dy)))
    x2, y2 = min(w, int(round(x2 - dx))), min(h, int(round(y2 - dy)))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    return _gray(np.ascontiguousarray(rgb[y1:y2, x1:x2])).astype(np.float32)


def _interp(shape: tuple[int, ...]) -> int:
    return cv2.INTER_AREA if max(shape[:2]) > FACE_SIZE else cv2.INTER_CUBIC


def noise_floor(rgb: np.ndarray, box: list[float] | tuple[float, ...]) -> tuple[float, float]:
    """The Laplacian's variance and the weakest direction's energy that noise alone gives a
    face in this box: measured in the flattest parts of the photo around it, brought to the
    face's scale as the face is.

    Sensor noise is fine detail of its own: at high ISO it lifted blurred faces over the
    threshold. The flattest blocks (a wall, the sky, a blurred background, smooth skin) hold
    nothing but noise, so their energy is what the face's score must not count. Measured on
    the face alone, noise cannot be told from the face's own fine detail.
    """
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    # The face's neighbourhood (its box grown by its size on every side), at the scale at
    # which the face is judged.
    r = FACE_SIZE / max(bw * (1 - 2 * FACE_INSET), 1.0)
    nx1, ny1 = max(0, int(x1 - bw * NOISE_REACH)), max(0, int(y1 - bh * NOISE_REACH))
    nx2, ny2 = min(w, int(x2 + bw * NOISE_REACH)), min(h, int(y2 + bh * NOISE_REACH))
    region = _gray(np.ascontiguousarray(rgb[ny1:ny2, nx1:nx2])).astype(np.float32)
    size = (max(1, round(region.shape[1] * r)), max(1, round(region.shape[0] * r)))
    region = cv2.resize(region, size, interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_CUBIC)
    b = NOISE_BLOCK
    rows, cols = (region.shape[0] - 4) // b, (region.shape[1] - 4) // b
    if rows * cols < 4:
        return 0.0, 0.0

    def blocks(img: np.ndarray) -> np.ndarray:
        return img[2:2 + rows * b, 2:2 + cols * b].reshape(rows, b, cols, b).swapaxes(1, 2).reshape(rows * cols, -1)
    iso = blocks(cv2.Laplacian(region, cv2.CV_32F).astype(np.float64)).var(axis=1)
    energy = _by_angle(*(blocks(d) for d in _second_derivatives(region)), axis=1)
    # Noise has no direction: a block's energy averaged over the angles, not its weakest,
    # which in a block this small is mostly the luck of the draw.
    return (float(np.percentile(iso, NOISE_PERCENTILE)),
            float(np.percentile(energy.mean(axis=1), NOISE_PERCENTILE)))


def weakest_direction(gray: np.ndarray) -> float:
    """Mean squared second derivative of `gray` along its weakest direction (every 3 degrees).

    A Laplacian adds the second derivatives of all directions, so a face
    smeared one way keeps the full detail across the smear and still scores
    high. Motion blur and camera shake flatten the second derivative along
    the smear (and, for frequencies high enough, everywhere but across it);
    defocus flattens it in every direction. The weakest direction sees both.
    """
    xx, yy, xy = (d[2:-2, 2:-2] for d in _second_derivatives(gray))
    return float(max(0.0, _by_angle(xx, yy, xy, axis=None).min()))


def _second_derivatives(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d2/dx2, d2/dy2 and d2/dxdy of `gray` (the edges are the caller's to cut)."""
    return tuple(cv2.filter2D(gray, cv2.CV_32F, k).astype(np.float64) for k in (_DXX, _DYY, _DXY))


def _by_angle(xx: np.ndarray, yy: np.ndarray, xy: np.ndarray, axis: int | None) -> np.ndarray:
    """The mean squared directional second derivative at every angle of _T, from the three
    filtered images (means over `axis`: None for the whole image, 1 for rows of blocks)."""
    def m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        v = (a * b).mean(axis=axis)
        return v if axis is None else v[:, None]
    m_xx, m_yy, m_xy = m(xx, xx), m(yy, yy), m(xy, xy)
    m_xx_yy, m_xx_xy, m_yy_xy = m(xx, yy), m(xx, xy), m(yy, xy)
    return (_C2 * _C2 * m_xx + _CS2 * _CS2 * m_xy + _S2 * _S2 * m_yy
            + 2 * _C2 * _CS2 * m_xx_xy + 2 * _C2 * _S2 * m_xx_yy + 2 * _CS2 * _S2 * m_yy_xy)


def frame_score(rgb: np.ndarray) -> float:
    """Normalised sharpness of the sharpest tile of the whole frame."""
    h, w = rgb.shape[:2]
    s = FRAME_LONG_SIDE / max(h, w)
    g = _gray(rgb)
    if s < 1:
        g = cv2.resize(g, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    g = g.astype(np.float64)
    rows = np.linspace(0, g.shape[0], FRAME_GRID + 1).astype(int)
    cols = np.linspace(0, g.shape[1], FRAME_GRID + 1).astype(int)
    best = 0.0
    for i in range(FRAME_GRID):
        for j in range(FRAME_GRID):
            tile = g[rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
            if tile.shape[0] < 3 or tile.shape[1] < 3:
                continue
            weakest = min(cv2.filter2D(tile, cv2.CV_64F, k).var() for k in _DIRECTIONS)
            best = max(best, weakest)
    return best * FRAME_SCALE
