"""`starsort sort --convert-jpeg`: a full-quality JPEG beside each filed raw.

Batch sorters often convert every raw to JPEG before anything else. starsort
analyses a raw from its embedded preview and never needs that, so the
conversion is opt-in and runs after sorting: a full LibRaw development
(camera white balance, AHD demosaic, 8 bits, the raw's orientation applied)
takes about a second per 24 MP frame on this machine, ten times the analysis.

* The JPEG is named after the filed raw (`DSC0001_2.ARW` -> `DSC0001_2.jpg`)
  and claimed with `os.link` from a temp file, so an existing file is never
  replaced; a raw filed with its camera JPEG (a pair) already has one and is
  skipped.
* Quality 95 with 4:4:4 chroma: "full quality" without the 2-3x size of 100.
* Capture time, camera and exposure EXIF are copied from the raw, so the JPEG
  sorts, clusters and validates like its raw. The pixels are already upright,
  so no Orientation tag is written.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .fsops import fsync_dir
from .names import temp_path

log = logging.getLogger(__name__)

QUALITY = 95
_COPIED_EXIF = (
    "Exif.Image.Make", "Exif.Image.Model", "Exif.Image.DateTime", "Exif.Photo.DateTimeOriginal",
    "Exif.Photo.DateTimeDigitized", "Exif.Photo.ExposureTime", "Exif.Photo.FNumber",
    "Exif.Photo.ISOSpeedRatings", "Exif.Photo.FocalLength", "Exif.Photo.LensModel",
    "Exif.Photo.ExposureBiasValue", "Exif.Image.Artist", "Exif.Image.Copyright",
)


def develop(raw_path: str | Path) -> np.ndarray:
    """The raw fully developed to upright 8-bit RGB."""
    import rawpy

    with rawpy.imread(str(raw_path)) as raw:
        return raw.postprocess(use_camera_wb=True, output_bps=8)


def jpeg_path(raw_path: str | Path) -> Path:
    raw_path = Path(raw_path)
    return raw_path.with_name(raw_path.stem + ".jpg")


def has_jpeg(raw_path: str | Path) -> bool:
    """True if a JPEG with the raw's stem already lies next to it (any case)."""
    raw_path = Path(raw_path)
    stem = raw_path.stem.casefold()
    try:
        return any(Path(n).stem.casefold() == stem and Path(n).suffix.lower() in (".jpg", ".jpeg")
                   for n in os.listdir(raw_path.parent))
    except FileNotFoundError:
        return False


def convert(raw_path: str | Path) -> Path | None:
    """Write `<stem>.jpg` beside the raw; return it, or None if a JPEG is already there."""
    raw_path = Path(raw_path)
    if has_jpeg(raw_path):
        return None
    dst = jpeg_path(raw_path)
    rgb = develop(raw_path)
    tmp = Path(temp_path(dst.parent))
    try:
        with open(tmp, "xb") as f:
            Image.fromarray(rgb).save(f, "JPEG", quality=QUALITY, subsampling=0, optimize=True)
        _copy_exif(raw_path, tmp)
        # Durable before the name appears: exiv2 rewrote the file in place.
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, dst)
        except FileExistsError:
            # Someone put a file there since has_jpeg() looked: theirs stays.
            log.info("%s appeared while converting %s; left as it is", dst, raw_path.name)
            return None
        fsync_dir(dst.parent)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return dst


def _copy_exif(raw_path: Path, jpeg: Path) -> None:
    try:
        import pyexiv2

        with pyexiv2.Image(str(raw_path)) as src:
            exif = src.read_exif(encoding="utf-8")
        wanted = {k: v for k, v in exif.items() if k in _COPIED_EXIF}
        if wanted:
            with pyexiv2.Image(str(jpeg)) as dst:
                dst.modify_exif(wanted, encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - a JPEG without EXIF is still the developed photo
        log.warning("%s: could not copy EXIF into its JPEG (%s)", raw_path.name, e)
