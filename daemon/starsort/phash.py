"""pHash stage: a 64-bit perceptual hash of the analysis image.

Fills `job.phash` with 16 lowercase hex digits (`imagehash.phash`, 8x8 DCT
bits of a 32x32 greyscale thumbnail). Always computed from the same pixels
through the same path (the analysis image, resized by imagehash with PIL):
mixing resize paths changes hashes by several bits (imagehash #181), which
would split bursts.

`bands` and `distance` are the cluster stage's own (`cluster.bands`,
`cluster.hamming`), re-exported so there is one definition of each.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import imagehash
from PIL import Image

from .cluster import bands, hamming as distance
from .job import Job

if TYPE_CHECKING:
    from .pipeline import Context

__all__ = ["run", "bands", "distance"]


def run(job: Job, ctx: Context) -> None:
    job.phash = str(imagehash.phash(Image.fromarray(job.image), hash_size=8))
