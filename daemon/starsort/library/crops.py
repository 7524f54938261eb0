"""`starsort people crop`: one person's face out of every photo, at full resolution.

Each matching face becomes `<photo>_face<id>.jpg` (quality 95) in the output
folder, the box widened by the margin on each side and cut from the original
at full resolution (a raw is developed fully, with its camera's white
balance); `crops.csv` records the source, the box, the crop's size, the
face's blur score and its distance to the query. Faces too small or blurry
are skipped (and counted), and nothing is cropped twice: a crop already in
the folder for that face is kept and recorded again.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from sqlite_utils import Database

from ..analysis import filetype
from ..config import Config
from ..store.people import Match

log = logging.getLogger("starsort.library")

FIELDS = ["crop", "source", "face_id", "x1", "y1", "x2", "y2", "width", "height", "blur_score", "distance"]


def full_resolution(path: str) -> Image.Image:
    """The photo upright at full resolution: a JPEG decoded whole, a raw developed fully."""
    if filetype.decode_kind(path) == "raw":
        import rawpy
        with rawpy.imread(path) as raw:
            rgb = raw.postprocess(use_camera_wb=True, output_bps=8)
        return Image.fromarray(np.ascontiguousarray(rgb))
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def write(db: Database, cfg: Config, found: list[Match], query, out_dir: Path, *, min_size: int,
          margin: float, include_blurry: bool) -> tuple[list[dict], dict[str, int]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    skipped: dict[str, int] = {}
    for m in found:
        row = db.execute(
            "SELECT p.current_path, p.original_path, p.width, p.height, f.x1, f.y1, f.x2, f.y2, f.blur_score"
            " FROM faces f JOIN photos p ON p.id = f.photo_id WHERE f.id = ?", (m.face_id,)).fetchone()
        if row is None:
            continue
        current, original, w, h, x1, y1, x2, y2, score = row
        source = current or original
        if x2 - x1 < min_size:
            skipped["smaller than --min-size"] = skipped.get("smaller than --min-size", 0) + 1
            continue
        if not include_blurry and (score is None or score < cfg.blur.threshold):
            skipped["blurry"] = skipped.get("blurry", 0) + 1
            continue
        name = f"{Path(source).stem}_face{m.face_id}.jpg"
        dest = out_dir / name
        if not dest.exists():
            try:
                img = full_resolution(source)
            except Exception as e:  # noqa: BLE001 - one unreadable photo must not stop the rest
                log.warning("cannot read %s: %s", source, e)
                skipped["unreadable"] = skipped.get("unreadable", 0) + 1
                continue
            sx, sy = img.width / (w or img.width), img.height / (h or img.height)
            mx, my = (x2 - x1) * margin, (y2 - y1) * margin
            box = (max(0, round((x1 - mx) * sx)), max(0, round((y1 - my) * sy)),
                   min(img.width, round((x2 + mx) * sx)), min(img.height, round((y2 + my) * sy)))
            crop = img.crop(box)
            tmp = dest.with_name(f".{dest.name}.tmp")
            crop.save(tmp, "JPEG", quality=95)
            tmp.replace(dest)
        with Image.open(dest) as c:
            cw, ch = c.size
        records.append({"crop": name, "source": source, "face_id": m.face_id, "x1": round(x1, 1),
                        "y1": round(y1, 1), "x2": round(x2, 1), "y2": round(y2, 1), "width": cw, "height": ch,
                        "blur_score": None if score is None else round(score, 2),
                        "distance": round(m.distance, 4)})
    with open(out_dir / "crops.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=FIELDS)
        wr.writeheader()
        wr.writerows(records)
    return records, skipped
