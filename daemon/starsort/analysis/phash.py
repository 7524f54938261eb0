"""pHash stage: a 64-bit perceptual hash of the analysis image, and the arithmetic on such hashes.

Fills `job.phash` with 16 lowercase hex digits (`imagehash.phash`, 8x8 DCT
bits of a 32x32 greyscale thumbnail). Always computed from the same pixels
through the same path (the analysis image, resized by imagehash with PIL):
mixing resize paths changes hashes by several bits (imagehash #181), which
would split bursts.

`bands`, `hamming` and `neighbour_masks` are pure arithmetic on the hex
hashes; the service's burst lookup and duplicate search use them too, so
imagehash (150 ms of imports) is imported only where a hash is computed.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from typing import TYPE_CHECKING

from .job import Job

if TYPE_CHECKING:
    from .job import Context

__all__ = ["run", "prepare", "bands", "hamming", "distance", "neighbour_masks", "parse"]


def prepare(ctx: Context) -> None:
    import imagehash  # noqa: F401 - loaded once at worker start, not on the first photo


def run(job: Job, ctx: Context) -> None:
    import imagehash
    from PIL import Image
    job.phash = str(imagehash.phash(Image.fromarray(job.image), hash_size=8))


BAND_BITS = 16
N_BANDS = 4
_BAND_MASK = (1 << BAND_BITS) - 1


def bands(phash_hex: str) -> tuple[int, int, int, int]:
    """The four 16-bit bands of a 64-bit hex hash, most significant first."""
    value = parse(phash_hex)
    return (
        (value >> 48) & _BAND_MASK,
        (value >> 32) & _BAND_MASK,
        (value >> 16) & _BAND_MASK,
        value & _BAND_MASK,
    )


def hamming(a_hex: str, b_hex: str) -> int:
    """Bits that differ between two 64-bit hex hashes."""
    return (parse(a_hex) ^ parse(b_hex)).bit_count()


def parse(phash_hex: str) -> int:
    if len(phash_hex) != 16:
        raise ValueError(f"pHash must be 16 hex digits, got {phash_hex!r}")
    return int(phash_hex, 16)


@lru_cache(maxsize=None)
def neighbour_masks(radius: int) -> tuple[int, ...]:
    """Every 16-bit XOR mask with at most `radius` bits set (0 first)."""
    radius = max(0, min(radius, BAND_BITS))
    masks = []
    for k in range(radius + 1):
        for bits in combinations(range(BAND_BITS), k):
            m = 0
            for b in bits:
                m |= 1 << b
            masks.append(m)
    return tuple(masks)


distance = hamming
