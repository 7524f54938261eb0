"""Faces stage: MTCNN (facenet-pytorch) on the analysis image.

Fills `job.faces` with one `Face` per detection whose probability is at least
`faces.min_confidence`, with its box (clipped to the image) and five landmarks
(eyes, nose, mouth corners) in ORIGINAL-image pixels: analysis-image
coordinates divided by `job.scale`, so they mean the same thing whatever size
decode worked at. Faces smaller than `faces.min_size` analysis pixels are not
looked for.

The weights ship inside the facenet-pytorch package; nothing is downloaded.
The detector is built once per worker process (`load_detector`, which the
worker calls at start) and kept in `ctx.models["mtcnn"]`, never per photo.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import FacesConfig
from .job import Face, Job

if TYPE_CHECKING:
    from .pipeline import Context

log = logging.getLogger(__name__)


def device_for(setting: str) -> str:
    import torch
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def load_detector(cfg: FacesConfig, threads: int | None = None) -> Any:
    """Build MTCNN on the configured device.

    `threads` sets torch's intra-op threads for this process; None leaves
    them alone, since the worker pool decides how to share the cores.
    """
    import torch
    from facenet_pytorch import MTCNN

    if threads is not None:
        torch.set_num_threads(max(1, threads))
    dev = device_for(cfg.device)
    log.info("loading MTCNN on %s (min face %d px)", dev, cfg.min_size)
    return MTCNN(keep_all=True, min_face_size=cfg.min_size, device=dev, post_process=False)


def run(job: Job, ctx: Context) -> None:
    cfg = ctx.config.faces
    mtcnn = ctx.models.get("mtcnn")
    if mtcnn is None:
        mtcnn = ctx.models["mtcnn"] = load_detector(cfg)
    job.faces = []
    h, w = job.image.shape[:2]
    # P-Net's first scale shrinks the image by 12 / min_size; smaller images
    # leave it nothing to scan (facenet-pytorch raises on an empty pyramid).
    if min(h, w) < cfg.min_size:
        return
    boxes, probs, points = mtcnn.detect(job.image, landmarks=True)
    if boxes is None:
        return
    # facenet-pytorch returns object arrays with keep_all on numpy 2.
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    s = job.scale
    for box, p, pts in zip(boxes, probs, points):
        if p is None or float(p) < cfg.min_confidence:
            continue
        x1, y1, x2, y2 = np.clip(box, 0, [w, h, w, h]) / s
        if x2 <= x1 or y2 <= y1:
            continue
        job.faces.append(Face(
            box=(float(x1), float(y1), float(x2), float(y2)),
            landmarks=[(float(x) / s, float(y) / s) for x, y in pts],
            probability=float(p),
        ))
    log.debug("%s: %d face(s)", job.path, len(job.faces))
