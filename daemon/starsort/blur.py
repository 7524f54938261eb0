"""Blur stage: how sharp each face is, and the whole frame.

Face score: the variance of the Laplacian of the face crop, taken from the
best-resolution pixels decode kept (`job.detail`) and resized to a fixed
96x96 before measuring, so the score does not depend on the image's
resolution or the face's size (BlurDetection2 notes the raw measure does).
It is scaled by FACE_SCALE so the seed's threshold of 10.0 separates sharp
from blurred faces in our data:

    sharp faces (13 real portraits, ARW and JPEG)   16.8 .. 118
    the same faces, Gaussian-blurred (sigma=w/60)    2.0 .. 7.2
    two_people_defocus.ARW                           0.3 .. 1.2
    blur/inspireface_blur_face.jpg                   2.7

Frame score (photos with no face): the Laplacian cannot tell motion blur from
detail (a frame shaken sideways keeps its vertical edges), so the frame is
measured by the *weakest direction* of the second derivative (horizontal,
vertical and both diagonals), on a 4x4 grid of tiles, keeping the sharpest
tile: one sharp region is enough, so shallow depth of field is not punished.
Measured at a fixed 768 px long side and scaled so 10.0 puts blur/106_*_S
(210) above and its _F (3.7) and _M (6.4) siblings below; the Sony camera
JPEGs in our data score 26 to 123 (one soft 2002 compact, DSC-P5, scores 1.5).
"""
from __future__ import annotations

import cv2
import numpy as np

from . import decode
from .job import Job

FACE_SIZE = 96
FACE_SCALE = 0.1
FRAME_LONG_SIDE = 768
FRAME_GRID = 4
FRAME_SCALE = 0.5

_DIRECTIONS = [
    np.array([[0, 0, 0], [1, -2, 1], [0, 0, 0]], np.float64),
    np.array([[0, 1, 0], [0, -2, 0], [0, 1, 0]], np.float64),
    np.array([[1, 0, 0], [0, -2, 0], [0, 0, 1]], np.float64) / 2,
    np.array([[0, 0, 1], [0, -2, 0], [1, 0, 0]], np.float64) / 2,
]


def run(job: Job, ctx) -> None:
    threshold = ctx.config.blur.threshold
    pixels = job.detail if job.detail is not None else job.image
    scale = job.detail_scale if job.detail is not None else job.scale
    if job.faces:
        # A face narrower than FACE_SIZE in the pixels at hand would be
        # upscaled, which blurs it: fetch sharper pixels (JPEGs decode again
        # at a larger DCT scale; only photos with small faces pay for it).
        smallest = min(f.box[2] - f.box[0] for f in job.faces)
        if smallest * scale < FACE_SIZE:
            pixels, scale = decode.sharper(job, FACE_SIZE / max(smallest, 1.0))
    for face in job.faces:
        face.blur_score = face_score(pixels, [v * scale for v in face.box])
        face.blurry = face.blur_score < threshold
    job.frame_score = frame_score(job.image)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def face_score(rgb: np.ndarray, box: list[float]) -> float:
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return 0.0
    crop = _gray(rgb[y1:y2, x1:x2])
    interp = cv2.INTER_AREA if crop.shape[0] > FACE_SIZE else cv2.INTER_CUBIC
    crop = cv2.resize(crop, (FACE_SIZE, FACE_SIZE), interpolation=interp)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var()) * FACE_SCALE


def frame_score(rgb: np.ndarray) -> float:
    h, w = rgb.shape[:2]
    s = FRAME_LONG_SIDE / max(h, w)
    g = _gray(rgb)
    if s < 1:
        g = cv2.resize(g, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    g = g.astype(np.float64)
    H, W = g.shape
    best = 0.0
    for i in range(FRAME_GRID):
        for j in range(FRAME_GRID):
            tile = g[i * H // FRAME_GRID:(i + 1) * H // FRAME_GRID, j * W // FRAME_GRID:(j + 1) * W // FRAME_GRID]
            if tile.size < 9:
                continue
            weakest = min(cv2.filter2D(tile, cv2.CV_64F, k).var() for k in _DIRECTIONS)
            best = max(best, weakest)
    return best * FRAME_SCALE
