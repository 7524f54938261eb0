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

Two things make it cheaper than facenet-pytorch out of the box (profiled in
bench/profile_analysis.py):

* Start-up: facenet-pytorch needs two functions of torchvision (`batched_nms`
  and, for face extraction we do not use, `transforms.functional`), but
  importing torchvision's package runs its `__init__`, which pulls in
  torchvision.models and, through `ops.roi_align`, torch._dynamo: about 1 s of
  a worker's start (3 s) on the build machine. `_import_mtcnn` loads just the
  modules MTCNN uses, from the installed torchvision, under bare parent
  packages.
* Per photo: facenet-pytorch resamples with
  `torch.nn.functional.interpolate(mode="area")` (`adaptive_avg_pool2d`):
  every level of the image pyramid, and every candidate face's 24 or 48 px
  crop for R-Net and O-Net, one call each (hundreds on a busy frame). That
  was two thirds of the detector's time. OpenCV's INTER_AREA does the same
  area average for 5-8x less CPU; the pyramid's levels after the first are
  averaged from the first rather than from the frame. Over 50 photos of
  real camera and face photos, analysed both ways at the same size, one photo moved by a
  star (bald_guys.jpg: one of its 24 faces crossed the blur threshold);
  bench/bench_speed.py reports the stars that change against a
  full-resolution analysis through facenet-pytorch's own resampling.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import os
import sys
import types
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import FacesConfig
from .job import Face, Job

if TYPE_CHECKING:
    from .job import Context

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

    MTCNN = _import_mtcnn()
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    dev = device_for(cfg.device)
    log.info("loading MTCNN on %s (min face %d px)", dev, cfg.min_size)
    return MTCNN(keep_all=True, min_face_size=cfg.min_size, device=dev, post_process=False)


def warm_up(detector: Any, max_px: int) -> None:
    """Run the detector once on a blank frame of the analysis size.

    The first call of a fresh model pays for oneDNN's kernel selection (about
    30 ms, more on a busy machine); the worker pays it before it says ready,
    so the first photo of a shoot does not.
    """
    h = max(1, max_px * 2 // 3)
    detector.detect(np.zeros((h, max_px, 3), np.uint8), landmarks=True)


def prepare(ctx: Context) -> None:
    """Load MTCNN once per worker and warm it up, before the worker says ready."""
    try:
        ctx.models["mtcnn"] = load_detector(ctx.config.faces)
        warm_up(ctx.models["mtcnn"], ctx.config.analysis.max_px)
    except Exception as e:
        raise RuntimeError(f"cannot load the face detector: {e}") from e


def _import_mtcnn() -> Any:
    """facenet-pytorch's MTCNN class, importing only the torchvision modules it uses."""
    if "torchvision" not in sys.modules:
        spec = importlib.util.find_spec("torchvision")
        if spec is not None and spec.submodule_search_locations:
            root = list(spec.submodule_search_locations)[0]
            # Bare packages: their submodules import from the real files, but
            # torchvision/__init__ (models, datasets, _dynamo) never runs.
            for name in ("torchvision", "torchvision.ops", "torchvision.transforms"):
                sub = name.split(".")[1:]
                mod = types.ModuleType(name)
                mod.__path__ = [os.path.join(root, *sub)]
                mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
                mod.__spec__.submodule_search_locations = mod.__path__
                sys.modules[name] = mod
    from facenet_pytorch.models import mtcnn
    from facenet_pytorch.models.utils import detect_face

    if detect_face.imresample is not _imresample:
        _torch_imresample[0] = detect_face.imresample
        detect_face.imresample = _imresample
    return mtcnn.MTCNN


# facenet-pytorch's own resampler, kept for tensors on a GPU.
_torch_imresample: list[Any] = [None]
# What facenet-pytorch resizes each candidate's crop to, for R-Net and O-Net.
_NET_INPUTS = ((24, 24), (48, 48))
# (weak reference to) the frame of the pyramid being built, and its first level (NHWC).
_pyramid: list[Any] = [None, None]


def _imresample(img: Any, sz: tuple[int, int]) -> Any:
    """Area resampling of an NCHW float tensor to `sz` (h, w), by OpenCV."""
    import cv2
    import torch

    h, w = int(sz[0]), int(sz[1])
    if img.device.type != "cpu":
        return _torch_imresample[0](img, sz)
    if (h, w) in _NET_INPUTS:
        # One candidate's crop (a view into the frame): R-Net and O-Net see
        # hundreds a photo, and torch's per-call overhead made them a quarter
        # of the worker's time.
        a = np.ascontiguousarray(img[0].permute(1, 2, 0).numpy())
        out = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
        if out.ndim == 2:
            out = out[..., None]
        return torch.from_numpy(out).permute(2, 0, 1).unsqueeze(0)
    # The first (largest) level is an area average of the frame; smaller
    # levels are area averages of that level, a sixth of the pixels to read.
    # A weak reference, not the tensor's address, identifies the frame: a
    # later photo's tensor can be allocated where this one was.
    cached = _pyramid[0]() if _pyramid[0] is not None else None
    if cached is not img or _pyramid[1] is None or h > _pyramid[1].shape[1] or w > _pyramid[1].shape[2]:
        src = img.permute(0, 2, 3, 1).numpy()  # a view: MTCNN's frame is channels-last in memory
        out = np.stack([cv2.resize(np.ascontiguousarray(a), (w, h), interpolation=cv2.INTER_AREA) for a in src])
        if out.ndim == 3:  # cv2 drops a single channel
            out = out[..., None]
        _pyramid[:] = [weakref.ref(img), out]
    else:
        out = np.stack([cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA) for a in _pyramid[1]])
        if out.ndim == 3:
            out = out[..., None]
    return torch.from_numpy(out).permute(0, 3, 1, 2)


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
