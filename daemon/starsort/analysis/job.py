"""The analysis's data types: a Job, its Faces, the stages' Context, and what a worker answers.

A Job travels through the stages in `pipeline.ANALYSIS` inside a worker
process; each stage fills in its fields. Only `result()` crosses back to the
service: no pixels but the signature's 96 px grey thumbnail, so the pipe
between processes carries kilobytes.

The stages, the worker and `pipeline.py` all import these types from here,
so no stage imports the pipeline that orders it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..config import Config


class BadInput(Exception):
    """The file itself is unusable (corrupt, truncated, not an image): quarantine it.

    Anything else a stage raises is an infrastructure failure or a bug, and the
    photo is marked `failed` instead, because the file may well be fine.
    """


@dataclass
class Face:
    box: tuple[float, float, float, float]        # x1, y1, x2, y2 in original-image pixels
    landmarks: list[tuple[float, float]]          # 5 points (eyes, nose, mouth corners), original pixels
    probability: float
    blur_score: float | None = None                # min(iso_score, dir_score), against blur.threshold
    blurry: bool | None = None                     # blur_score < blur.threshold
    iso_score: float | None = None                 # the Laplacian's part of the score (defocus)
    dir_score: float | None = None                 # the weakest direction's part (motion, shake)
    judged_px: float | None = None                 # box width in the pixels the score was measured on
    skipped: str | None = None                     # None (counted) | "small" | "background"
    embedding: Any = None                          # unit float32 vector (analysis/embed.py), or None
    embedded_by: str | None = None                 # the embedding model's name

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "probability": round(float(self.probability), 4),
            "blur_score": _round(self.blur_score),
            "blurry": self.blurry,
            "iso_score": _round(self.iso_score),
            "dir_score": _round(self.dir_score),
            "judged_px": None if self.judged_px is None else round(float(self.judged_px), 1),
            "skipped": self.skipped,
            # Little-endian float32 bytes: 512 B a face across the pipe, stored as they are.
            "embedding": None if self.embedding is None else np.asarray(self.embedding, "<f4").tobytes(),
            "embedded_by": self.embedded_by,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 2)


@dataclass
class Job:
    photo_id: int
    path: str                       # the file analysed (the JPEG of a RAW+JPEG pair)
    kind: str                       # "jpeg" | "raw": how to decode `path`

    # decode
    image: np.ndarray | None = None         # RGB uint8, oriented, long side about analysis.max_px
    scale: float = 1.0                       # analysis-image pixels per original-image pixel
    original_size: tuple[int, int] | None = None   # (width, height) of the oriented original
    decode_source: str | None = None         # "jpeg-draft" | "raw-preview" | "raw-half"
    captured_at: str | None = None           # ISO 8601, from EXIF DateTimeOriginal, else mtime
    captured_subsec: str | None = None       # EXIF SubSecTimeOriginal (digits: "05" is 0.05 s), when written
    camera_model: str | None = None
    # Pixels at better resolution than `image` when decode has them cheaply
    # (a full-size embedded preview); blur crops faces from here.
    detail: np.ndarray | None = None
    detail_scale: float = 1.0                # detail pixels per original pixel

    # exif
    exif: dict[str, str] = field(default_factory=dict)       # checked tags as exiv2 prints them
    exif_missing: list[str] | None = None    # required tags absent (None: not checked)
    exif_problems: list[str] = field(default_factory=list)

    # phash
    phash: str | None = None                 # 16 hex digits, 64-bit pHash

    # signature
    signature: bytes | None = None           # a small grey thumbnail that confirms a burst match

    # faces + blur
    faces: list[Face] = field(default_factory=list)
    frame_score: float | None = None         # normalised sharpness of the whole frame

    # preview (for the review page; written to disk, only its name travels)
    preview: str | None = None               # key of the files under review.previews
    preview_only: bool = False               # a photo analysed before: only its previews are wanted
    embed_only: Any = None                   # [(face_id, landmarks)]: only these stored faces to embed
    # A raw's embedded preview, as the camera wrote it, and how to turn it
    # upright: the review page's "full size" of a raw.
    embedded_jpeg: bytes | None = None
    embedded_orientation: int = 1

    # rate
    stars: int | None = None
    rated_on: str | None = None              # "faces" | "frame"
    sharpness: float | None = None           # ranks frames within a cluster (higher = sharper)

    def result(self) -> dict[str, Any]:
        """What the service stores: everything but the pixels (the signature is a thumbnail of ~6 KB)."""
        return {
            "photo_id": self.photo_id,
            "original_size": list(self.original_size) if self.original_size else None,
            "decode_source": self.decode_source,
            "captured_at": self.captured_at,
            "captured_subsec": self.captured_subsec,
            "camera_model": self.camera_model,
            "phash": self.phash,
            "signature": self.signature,
            "faces": [f.as_dict() for f in self.faces],
            "frame_score": None if self.frame_score is None else round(float(self.frame_score), 2),
            "stars": self.stars,
            "rated_on": self.rated_on,
            "sharpness": None if self.sharpness is None else float(self.sharpness),
            "exif": self.exif,
            "exif_missing": self.exif_missing,
            "exif_problems": self.exif_problems,
            "preview": self.preview,
        }


@dataclass
class Context:
    """What the stages share inside one worker: the config and loaded models."""
    config: Config
    models: dict[str, Any] = field(default_factory=dict)


class Stage(Protocol):
    """One analysis step: a module of `analysis/` with `run(job, ctx)`, which fills in its part of the Job.

    A stage may also define `prepare(ctx)`, run once when a worker starts
    (loading a model, importing a heavy library), so the first photo does not
    pay for it. Stages are modules, so a spawned worker is told them by name.
    """
    __name__: str

    def run(self, job: Job, ctx: Context) -> None: ...


class Status(StrEnum):
    """How a worker's analysis of one photo ended (a str, so it logs and compares as text)."""
    OK = "ok"                # payload: Job.result()
    BAD = "bad"              # the file is unusable: quarantine (payload: the reason)
    VANISHED = "vanished"    # the file left the inbox during analysis
    ERROR = "error"          # a bug or infrastructure failure (payload: the traceback)
    CRASHED = "crashed"      # the worker died on this photo
    TIMEOUT = "timeout"      # the worker overran analysis.timeout_seconds and was killed


class Answer(NamedTuple):
    """A worker's answer about one photo, as `Pool.poll()` returns it."""
    photo_id: int
    status: Status
    payload: Any
