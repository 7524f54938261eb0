"""Signature stage: a small grey thumbnail that confirms (or refutes) a burst match.

Fills `job.signature`: the analysis image in grey, area-averaged to SIDE
pixels on its long side, as bytes (a 4-byte header: b"S1", width, height).
About 6 KB for a 3:2 frame.

pHash finds the candidates for a burst, but it cannot tell a handheld
frame shifted by 2 % (7-10 bits away) from another photo of the same spot
(the same background, the person moved). `difference(a, b)`, which the
service's burst step calls, can, from the two thumbnails alone, with numpy
and nothing heavier (the service never loads OpenCV):

1. Align: the shift between the frames by phase correlation (up to
   MAX_SHIFT of the frame, the most a handheld burst moves).
2. Undo the exposure change: the gain and offset that best map one frame
   onto the other (least squares), so +-10 % exposure costs nothing.
3. Compare locally: the overlap is cut into a 3 x 4 grid (4 x 3 for a
   portrait frame); in each block, the residual energy after alignment,
   relative to the block's own contrast plus a noise floor, at the best of
   the 3 x 3 one-pixel shifts around the global one (which absorbs the
   rotation and the sub-pixel error of a handheld frame).
4. The answer is the worst block. Frames of one burst change nowhere; a
   person who moved, a new pose or a zoom changes some block entirely.

Calibrated in bench/quality.py's burst set (tuning part): frames of
synthetic handheld bursts differ by at most 0.21, the same spot with the
person moved 5-10 % of the frame a few seconds later by at least 0.57;
`cluster.max_change` (0.35) sits between.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .job import Job

if TYPE_CHECKING:
    from .job import Context

__all__ = ["run", "make", "difference", "SIDE"]

SIDE = 96                  # long side of the thumbnail, in pixels
MAX_SHIFT = 0.06           # of the long side: the largest frame-to-frame shift looked for
GRID = (3, 4)              # blocks (rows, columns) of a landscape frame; transposed for portrait
FLOOR = 25.0               # noise floor added to each block's contrast (5 levels of 255, squared)
_MAGIC = b"S1"


def run(job: Job, ctx: Context) -> None:
    job.signature = make(job.image)


def make(rgb: np.ndarray) -> bytes:
    """The signature of an RGB (or grey) uint8 image."""
    import cv2

    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    h, w = g.shape[:2]
    s = SIDE / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    t = cv2.resize(g, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return _MAGIC + bytes((t.shape[1], t.shape[0])) + np.ascontiguousarray(t, np.uint8).tobytes()


def _read(sig: bytes | None) -> np.ndarray | None:
    if not sig or len(sig) < 4 or sig[:2] != _MAGIC:
        return None
    w, h = sig[2], sig[3]
    if len(sig) != 4 + w * h or w < 8 or h < 8:
        return None
    return np.frombuffer(sig, np.uint8, offset=4).reshape(h, w).astype(np.float64)


def difference(a: bytes | None, b: bytes | None) -> float:
    """How much of the scene changed between two frames, after alignment and exposure:
    the worst block's residual relative to its contrast (0 = the same; inf = not comparable:
    a missing or malformed signature, or frames of different shapes)."""
    A, B = _read(a), _read(b)
    if A is None or B is None or A.shape != B.shape:
        return float("inf")
    h, w = A.shape
    reach = max(1, round(MAX_SHIFT * max(h, w)))
    dy, dx = _align(A, B, reach)
    # The overlap, less a one-pixel margin for the local search.
    ya, yb = max(0, dy), max(0, -dy)
    xa, xb = max(0, dx), max(0, -dx)
    oh, ow = h - abs(dy) - 2, w - abs(dx) - 2
    rows, cols = GRID if w >= h else GRID[::-1]
    if oh < 2 * rows or ow < 2 * cols:
        return float("inf")
    Bo = B[yb + 1:yb + 1 + oh, xb + 1:xb + 1 + ow]
    Ao = A[ya + 1:ya + 1 + oh, xa + 1:xa + 1 + ow]
    am = Ao - Ao.mean()
    gain = float((am * (Bo - Bo.mean())).sum() / max((am * am).sum(), 1e-9))
    offset = float(Bo.mean() - gain * Ao.mean())
    # Blocks as equal slices of the overlap (the last pixels that do not divide evenly are left out).
    bh, bw = oh // rows, ow // cols
    n = bh * bw
    Bb = Bo[:bh * rows, :bw * cols]
    b_sum, b_sq = _blocks(Bb, rows, cols), _blocks(Bb * Bb, rows, cols)
    b_var = b_sq / n - (b_sum / n) ** 2
    best = np.full((rows, cols), np.inf)
    for ly in (-1, 0, 1):
        for lx in (-1, 0, 1):
            As = gain * A[ya + 1 + ly:ya + 1 + ly + bh * rows, xa + 1 + lx:xa + 1 + lx + bw * cols] + offset
            diff = As - Bb
            # The variance of the difference: a block that only got a little brighter
            # (vignetting, a light) has not changed; structure that moved has.
            d_sum, d_sq = _blocks(diff, rows, cols), _blocks(diff * diff, rows, cols)
            a_sum, a_sq = _blocks(As, rows, cols), _blocks(As * As, rows, cols)
            resid = d_sq / n - (d_sum / n) ** 2
            a_var = a_sq / n - (a_sum / n) ** 2
            best = np.minimum(best, resid / (a_var + b_var + FLOOR))
    return float(best.max())


def _blocks(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sums over a rows x cols grid of equal blocks covering `x`."""
    h, w = x.shape
    return x.reshape(rows, h // rows, cols, w // cols).sum(axis=3).sum(axis=1)


_WINDOWS: dict[tuple[int, int], np.ndarray] = {}


def _align(A: np.ndarray, B: np.ndarray, reach: int) -> tuple[int, int]:
    """(dy, dx) such that A[y + dy, x + dx] shows what B[y, x] shows, |dy|, |dx| <= reach."""
    h, w = A.shape
    win = _WINDOWS.get((h, w))
    if win is None:
        win = _WINDOWS[(h, w)] = np.outer(np.hanning(h), np.hanning(w))
    fa = np.fft.rfft2((A - A.mean()) * win)
    fb = np.fft.rfft2((B - B.mean()) * win)
    cross = fa * np.conj(fb)
    cross /= np.maximum(np.abs(cross), 1e-9)
    r = np.fft.irfft2(cross, s=(h, w))
    # Only shifts within reach: a handheld burst never moves further.
    r = np.roll(np.roll(r, reach, axis=0), reach, axis=1)[:2 * reach + 1, :2 * reach + 1]
    py, px = np.unravel_index(int(np.argmax(r)), r.shape)
    # A peak one pixel off is absorbed by the blocks' own one-pixel search.
    return int(py) - reach, int(px) - reach
