"""Faces stage: MTCNN (facenet-pytorch) on the analysis image.

The weights ship inside the facenet-pytorch package; nothing is downloaded.
The detector is built once per worker process (`load_detector`) and kept in
`ctx.models`, never per photo. Boxes and the five landmarks are mapped back to
original-image pixels, so they mean the same thing whatever size we decoded at.
"""
from __future__ import annotations

import logging

import numpy as np

from .config import FacesConfig
from .job import Face, Job

log = logging.getLogger(__name__)


def device_for(setting: str) -> str:
    import torch
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def load_detector(cfg: FacesConfig):
    from facenet_pytorch import MTCNN
    dev = device_for(cfg.device)
    log.info("loading MTCNN on %s", dev)
    return MTCNN(keep_all=True, min_face_size=cfg.min_size, device=dev, post_process=False)


def run(job: Job, ctx) -> None:
    cfg = ctx.config.faces
    mtcnn = ctx.models.get("mtcnn")
    if mtcnn is None:
        mtcnn = ctx.models["mtcnn"] = load_detector(cfg)
    boxes, probs, points = mtcnn.detect(job.image, landmarks=True)
    job.faces = []
    if boxes is None:
        return
    h, w = job.image.shape[:2]
    s = job.scale
    for box, p, pts in zip(boxes, probs, points):
        if p is None or p < cfg.min_confidence:
            continue
        x1, y1, x2, y2 = np.clip(box, [0, 0, 0, 0], [w, h, w, h]) / s
        job.faces.append(Face(
            box=(float(x1), float(y1), float(x2), float(y2)),
            landmarks=[(float(x) / s, float(y) / s) for x, y in pts],
            probability=float(p),
        ))
