"""Decode stage: the file -> an upright RGB analysis image, fast.

* JPEG: libjpeg scales the DCT while decoding (`Image.draft`), so a 24 MP
  frame is decoded at 1/2, 1/4 or 1/8 size instead of in full, then EXIF
  orientation is applied. The draft-size image is kept as `job.detail`: the
  best-resolution pixels we have, from which blur crops faces.
* Raw: the embedded preview (`extract_thumb`), which is the camera's own JPEG,
  when its long side is at least `analysis.min_preview_px`; otherwise a
  half-size demosaic. Full demosaicing never happens here: it costs seconds
  per frame (anchors 3.4). The preview is stored in sensor orientation, so
  the raw's `sizes.flip` is applied to it; LibRaw's own output is already
  upright.
* Capture time (EXIF DateTimeOriginal, else the file's mtime) and camera model.

Anything wrong with the file itself raises BadInput (quarantine). Pillow's
LOAD_TRUNCATED_IMAGES is never set: it would hide truncated files.
"""
from __future__ import annotations

import io
import logging
import os
import warnings
from datetime import datetime

import cv2
import numpy as np
import rawpy
from PIL import Image, ImageOps, UnidentifiedImageError

from .job import BadInput, Job

log = logging.getLogger(__name__)

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_MODEL = 0x0110
_ORIENTATION = 0x0112


def run(job: Job, ctx) -> None:
    cfg = ctx.config.analysis
    Image.MAX_IMAGE_PIXELS = cfg.max_image_pixels
    if job.kind == "jpeg":
        _jpeg(job, cfg)
    else:
        _raw(job, cfg)
    if job.image is None or job.image.size == 0 or int(job.image.max()) == 0:
        raise BadInput("no image data: the decoded image is empty or all black (a stripped file?)")
    if job.captured_at is None:
        job.captured_at = datetime.fromtimestamp(os.stat(job.path).st_mtime).isoformat(timespec="seconds")


def _fit(a: np.ndarray, max_px: int) -> tuple[np.ndarray, float]:
    h, w = a.shape[:2]
    s = min(1.0, max_px / max(h, w))
    if s >= 1.0:
        return np.ascontiguousarray(a), 1.0
    small = cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return small, s


def _exif_time(value: object) -> str | None:
    if not value:
        return None
    text = str(value).strip().strip("\x00")
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


# libjpeg scales by 1/1, 1/2, 1/4 or 1/8; the Huffman decoding it cannot skip
# dominates, so the gain is ~2-3x at 1/4. Detection is happy with any long
# side from DETECT_MIN_FRACTION * max_px up to max_px.
DETECT_MIN_FRACTION = 0.6


def _open_jpeg(path: str, long_side: float):
    """Open, DCT-scale so the long side is at least `long_side`, decode, orient."""
    with warnings.catch_warnings():
        # A decompression bomb must fail before allocation, not warn.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path, formats=["JPEG"])
            full_w, full_h = im.size
            exif = im.getexif()
            want = min(1.0, long_side / max(full_w, full_h))
            im.draft("RGB", (max(1, round(full_w * want)), max(1, round(full_h * want))))
            im.load()
            im = ImageOps.exif_transpose(im.convert("RGB"))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise BadInput(f"image too large: {e}") from None
        except UnidentifiedImageError:
            raise BadInput("not a JPEG Pillow can read") from None
        except OSError as e:
            raise BadInput(f"truncated or corrupt JPEG: {e}") from None
        except (SyntaxError, ValueError) as e:
            raise BadInput(f"corrupt JPEG: {e}") from None
    if exif.get(_ORIENTATION, 1) in (5, 6, 7, 8):
        full_w, full_h = full_h, full_w
    return np.asarray(im), (full_w, full_h), exif


def _jpeg(job: Job, cfg) -> None:
    detail, job.original_size, exif = _open_jpeg(job.path, cfg.max_px * DETECT_MIN_FRACTION)
    job.detail = detail
    job.detail_scale = detail.shape[1] / job.original_size[0]
    job.image, s = _fit(detail, cfg.max_px)
    job.scale = job.detail_scale * s
    job.decode_source = "jpeg-draft"
    job.captured_at = _exif_time(exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL))
    model = exif.get(_MODEL)
    job.camera_model = (str(model).strip().strip("\x00") or None) if model else None


def sharper(job: Job, scale: float) -> tuple[np.ndarray, float]:
    """Pixels at `scale` (original = 1.0) or better, for cropping small faces.

    JPEGs only: decode again at a larger DCT scale. A raw's preview is
    already the best we have without demosaicing, which the hot path avoids.
    """
    if job.kind != "jpeg" or job.detail is None or scale <= job.detail_scale:
        return job.detail if job.detail is not None else job.image, job.detail_scale
    pixels, size, _ = _open_jpeg(job.path, max(job.original_size) * min(1.0, scale))
    return pixels, pixels.shape[1] / size[0]


def _rotate(a: np.ndarray, flip: int) -> np.ndarray:
    # LibRaw's flip: 3 = 180 degrees, 5 = 90 counter-clockwise, 6 = 90 clockwise.
    if flip == 3:
        return np.ascontiguousarray(a[::-1, ::-1])
    if flip == 5:
        return np.ascontiguousarray(np.rot90(a, 1))
    if flip == 6:
        return np.ascontiguousarray(np.rot90(a, -1))
    return a


def _raw(job: Job, cfg) -> None:
    try:
        with rawpy.imread(job.path) as raw:
            flip = raw.sizes.flip
            full_w, full_h = raw.sizes.width, raw.sizes.height
            if flip in (5, 6):
                full_w, full_h = full_h, full_w
            _check_has_pixel_data(job.path, raw)
            # Reading the sensor data (no demosaic: ~70 ms for 24 MP) is the
            # integrity check: a raw cut short by a card error still has an
            # intact preview at its start, and would otherwise be rated and
            # filed as if it were whole.
            raw.unpack()
            preview = _preview(raw, cfg.min_preview_px)
            if preview is not None:
                rgb = _rotate(preview, flip)
                job.decode_source = "raw-preview"
            else:
                rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, user_flip=None)
                job.decode_source = "raw-half"
    except rawpy.LibRawError as e:
        raise BadInput(f"{_RAW_ERRORS.get(type(e).__name__, 'the raw decoder refused the file')}"
                       f" ({type(e).__name__}: {_msg(e)})") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot read the raw file: {e}") from None
    job.original_size = (full_w, full_h)
    job.detail = rgb
    job.detail_scale = rgb.shape[1] / full_w
    job.image, s = _fit(rgb, cfg.max_px)
    job.scale = job.detail_scale * s
    job.captured_at, job.camera_model = _raw_exif(job.path)


_RAW_ERRORS = {
    "LibRawIOError": "truncated or unreadable raw file",
    "LibRawFileUnsupportedError": "not a raw format LibRaw can decode",
    "LibRawDataError": "corrupt raw data",
    "LibRawTooBigError": "raw image too large",
}

# Real raws, however well compressed, carry more than a quarter bit per pixel.
_MIN_BITS_PER_PIXEL = 0.25


def _check_has_pixel_data(path: str, raw: rawpy.RawPy) -> None:
    """Refuse a raw whose file is too small to hold the image it declares.

    A metadata-only file (exiftool's stripped DNG) makes LibRaw "decode"
    whatever its reused buffers held: in a worker that decoded another photo
    before, that is a plausible-looking picture, which would be rated.
    """
    pixels = raw.sizes.raw_width * raw.sizes.raw_height
    size = os.path.getsize(path)
    if pixels and size * 8 < pixels * _MIN_BITS_PER_PIXEL:
        raise BadInput(f"no image data: {size} bytes cannot hold a {raw.sizes.raw_width}x"
                       f"{raw.sizes.raw_height} raw (a stripped or truncated file)")


def _msg(e: Exception) -> str:
    m = e.args[0] if e.args else str(e)
    return m.decode(errors="replace") if isinstance(m, bytes) else str(m)


def _preview(raw: rawpy.RawPy, min_px: int) -> np.ndarray | None:
    """The embedded preview as RGB, or None if there is none big enough."""
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    except rawpy.LibRawError as e:
        log.debug("no usable preview: %s", e)
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            im = Image.open(io.BytesIO(thumb.data), formats=["JPEG"])
            if max(im.size) < min_px:
                return None
            im.load()
            # Orientation comes from the raw (sizes.flip), not the preview's own EXIF.
            return np.asarray(im.convert("RGB"))
        except (OSError, SyntaxError, ValueError):
            return None
    if thumb.format == rawpy.ThumbFormat.BITMAP and max(thumb.data.shape[:2]) >= min_px:
        return np.ascontiguousarray(thumb.data[..., :3])
    return None


def _raw_exif(path: str) -> tuple[str | None, str | None]:
    """Capture time and model through exiv2; a raw it cannot parse still gets analysed."""
    try:
        import pyexiv2
        pyexiv2.set_log_level(3)   # errors only: maker-note warnings are noise in a service log (mute would hide errors)
        with pyexiv2.Image(path) as img:
            exif = img.read_exif()
    except Exception as e:  # noqa: BLE001 - metadata is optional; pixels are what matter
        log.debug("no EXIF from %s: %s", path, e)
        return None, None
    when = _exif_time(exif.get("Exif.Photo.DateTimeOriginal") or exif.get("Exif.Image.DateTimeOriginal")
                      or exif.get("Exif.Image.DateTime"))
    model = (exif.get("Exif.Image.Model") or "").strip() or None
    return when, model
