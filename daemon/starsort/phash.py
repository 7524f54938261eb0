"""pHash stage: a 64-bit perceptual hash of the analysis image.

Always computed from the same pixels through the same path (the analysis
image, resized by imagehash with PIL): mixing resize paths changes hashes by
several bits (imagehash #181), which would split bursts.
"""
from __future__ import annotations

import imagehash
from PIL import Image

from .job import Job


def run(job: Job, ctx) -> None:
    job.phash = str(imagehash.phash(Image.fromarray(job.image), hash_size=8))

