"""Embed stage: who each face is, as a 128-number vector (SFace, through OpenCV's dnn).

For every face in `job.faces`, `face.embedding` becomes a unit-length float32
vector; two faces of one person are close by cosine distance (1 - dot
product), two people far apart. `people.threshold` (0.40 by default) is the
distance under which two faces are taken for one person.

How: the face is aligned by its five MTCNN landmarks (eyes, nose tip, mouth
corners) to the 112x112 ArcFace template with a similarity transform
(rotation, scale, shift: no shear, so a face is never distorted), cut from the
analysis image (the same pixels MTCNN looked at: embedding at full resolution
gave the same distances), and run through SFace.

The model: SFace (Zhong et al., IEEE TIP 2021), the int8 block-quantised ONNX
build of OpenCV Zoo, Apache-2.0, shipped inside this package
(`models/`, with its licence; its SHA-256 is checked when a worker loads it).
It runs in OpenCV, which starsort already has, at 13-25 ms a face on 2
cores. `cv2.FaceRecognizerSF.feature()` fails on this int8 build in OpenCV 5,
so the network is run through `cv2.dnn` directly, its input named `data`.

A second model plugs in behind `Embedder` (a name, a `vector(aligned)`): the
service stores each vector with its model's name, and a change of model
re-embeds the faces, nothing else.
"""
from __future__ import annotations

import hashlib
import logging
from importlib import resources
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from .job import Job

if TYPE_CHECKING:
    from .job import Context

log = logging.getLogger(__name__)

# ArcFace's five-point template for a 112x112 crop (insightface), which SFace was trained on.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)
SIZE = 112


class Embedder(Protocol):
    name: str
    dims: int

    def vector(self, aligned_rgb: np.ndarray) -> np.ndarray: ...


class SFace:
    name = "sface-2021dec-int8bq"
    dims = 128
    FILE = "face_recognition_sface_2021dec_int8bq.onnx"
    SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"

    def __init__(self) -> None:
        data = resources.files(__package__).joinpath("models", self.FILE).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.SHA256:
            raise RuntimeError(f"the face embedding model {self.FILE} is damaged (SHA-256 {digest},"
                               f" expected {self.SHA256}): reinstall starsort")
        self.net = cv2.dnn.readNetFromONNX(np.frombuffer(data, np.uint8))

    def vector(self, aligned_rgb: np.ndarray) -> np.ndarray:
        # SFace takes RGB in 0..255, unscaled (OpenCV's own recogniser swaps its BGR input to RGB).
        blob = cv2.dnn.blobFromImage(aligned_rgb, 1.0, (SIZE, SIZE), (0, 0, 0), swapRB=False, crop=False)
        self.net.setInput(blob, "data")
        v = self.net.forward().reshape(-1).astype(np.float32)
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v


def load(ctx: Context) -> Embedder:
    if "embedder" not in ctx.models:
        ctx.models["embedder"] = SFace()
    return ctx.models["embedder"]


def prepare(ctx: Context) -> None:
    if ctx.config.people.enabled:
        load(ctx)


def align(rgb: np.ndarray, landmarks: list[tuple[float, float]] | np.ndarray) -> np.ndarray:
    """The face whose five landmarks (in `rgb`'s pixels) are given, as a 112x112 crop in the
    template's pose."""
    src = np.asarray(landmarks, np.float32).reshape(5, 2)
    m, _ = cv2.estimateAffinePartial2D(src, TEMPLATE, method=cv2.LMEDS)
    if m is None:
        # Degenerate landmarks (all on a line): scale and shift from the eyes alone.
        m = cv2.getAffineTransform(src[[0, 1, 3]], TEMPLATE[[0, 1, 3]])
    return cv2.warpAffine(rgb, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def run(job: Job, ctx: Context) -> None:
    if not ctx.config.people.enabled or not job.faces or job.image is None:
        return
    embedder = load(ctx)
    for face in job.faces:
        pts = [(x * job.scale, y * job.scale) for x, y in face.landmarks]
        face.embedding = embedder.vector(align(job.image, pts))
        face.embedded_by = embedder.name
