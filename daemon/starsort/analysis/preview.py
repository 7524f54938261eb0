"""Preview stage: the review page's pictures, made while the decoded pixels are in hand.

Fills `job.preview`, the key of the files it writes under `review.previews`:

    s     about 400 px on the long side, for the grid
    l     the best pixels decode had, up to 2048 px, for the loupe and compare
    full  a raw's embedded JPEG, as the camera wrote it with its orientation
          set, when it is larger than `l` (a JPEG's full size is the original)

The worker already holds the decoded image, so this costs two JPEG
encodes (about 10 ms on 2 cores, in the decode-ahead thread, which overlaps
with face detection) and no decode: the service never decodes an untrusted
file to show it. Each file is written to a temp name and renamed into
place, so the page never serves half a JPEG. The key is made from the
analysed file's path, size and modification time, so a changed file gets
new previews and the browser's year-long cache never shows a stale one.
A preview that cannot be written (a full cache disk) is logged and
skipped: it never fails the photo.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .. import paths
from .job import Job

if TYPE_CHECKING:
    from .job import Context

log = logging.getLogger(__name__)

SMALL_PX = 400
LARGE_PX = 2048
QUALITY = {"s": 80, "l": 85}


def key_for(path: str) -> str:
    st = os.stat(path)
    return hashlib.sha256(f"{path}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape")
                          ).hexdigest()[:24]


def run(job: Job, ctx: Context) -> None:
    if not ctx.config.review.enabled or job.image is None:
        return
    root = Path(ctx.config.review.previews)
    try:
        key = key_for(job.path)
        large = job.detail if job.detail is not None else job.image
        _write(paths.preview_file(root, key, "l"), _encode(_fit(large, LARGE_PX), QUALITY["l"]))
        _write(paths.preview_file(root, key, "s"), _encode(_fit(job.image, SMALL_PX), QUALITY["s"]))
        if job.embedded_jpeg is not None and job.original_size is not None and \
                max(job.original_size) > max(large.shape[:2]):
            _write(paths.preview_file(root, key, "full"), _oriented(job.embedded_jpeg, job.embedded_orientation))
    except OSError as e:
        log.warning("cannot write the previews of %s: %s", job.path, e)
        return
    job.preview = key


def _fit(a: np.ndarray, long_side: int) -> np.ndarray:
    h, w = a.shape[:2]
    s = long_side / max(h, w)
    if s >= 1:
        return a
    return cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _encode(rgb: np.ndarray, quality: int) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, 0])
    if not ok:
        raise OSError("JPEG encoding failed")
    return buf.tobytes()


def _oriented(jpeg: bytes, orientation: int) -> bytes:
    """The camera's JPEG with EXIF Orientation set, so the browser shows it upright
    (the raw, not its preview, knows which way is up)."""
    import pyexiv2
    with pyexiv2.ImageData(jpeg) as img:
        img.modify_exif({"Exif.Image.Orientation": str(orientation)})
        return img.get_bytes()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
