"""Which file answers a preview request, by photo: the page never names a path.

The analysis workers write a photo's previews while they hold its decoded
pixels (`analysis/preview.py`): `s` (about 400 px, the grid), `l` (up to
2048 px, the loupe) and, for a raw whose embedded preview is larger than
that, `full`. "Full size" of a JPEG is the original itself: the browser
decodes it, the service never does.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import paths

SIZES = ("s", "l", "full")
_JPEG_MAGIC = b"\xff\xd8\xff"


def find(root: Path, key: str | None, size: str, current_path: str | None, kind: str) -> tuple[str, str] | None:
    """(file, ETag) for a photo's preview of `size`, or None when there is none yet."""
    if size == "full" and kind == "jpeg" and current_path:
        try:
            st = os.stat(current_path)
            with open(current_path, "rb") as f:
                if f.read(3) != _JPEG_MAGIC:
                    return None
        except OSError:
            return None
        return current_path, f'"o-{st.st_size:x}-{st.st_mtime_ns:x}"'
    if not key:
        return None
    for s in (size, "l") if size == "full" else (size,):
        p = paths.preview_file(root, key, s)
        if p.is_file():
            return str(p), f'"{key}-{s}"'
    return None
