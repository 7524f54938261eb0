"""The seed pipeline, as the speed benchmark's reference: how ImageClusterBlur rates photos.

    .venv/bin/python bench/seed_reference.py IN_DIR OUT_DIR

For each .ARW/.JPG in IN_DIR, the way the seed project (Zayatsoff's
ImageClusterBlur: random_image_converter.py, mtcnn_face_extraction.py,
variance_of_laplacian.py) does it:

1. convert: a raw is fully demosaiced (`rawpy.postprocess()`, LibRaw's
   defaults) and a JPEG fully decoded (`cv2.imread`), and either is saved as
   a JPEG into a work folder;
2. the converted JPEG is opened at full resolution; pHash of the full image
   (the seed grouped similar photos with fastdup; pHash stands in for it);
3. MTCNN (facenet-pytorch, `keep_all=True`, its defaults: min face 20 px) on
   the full-resolution image;
4. variance of the Laplacian of each face crop with probability > 0.8,
   blurry below 10.0 (the seed's default); a photo without faces is scored on
   the whole frame;
5. stars from the share of blurry faces (starsort's default mapping);
6. copy the original into OUT_DIR/N-stars.

One concession to the reference: MTCNN is built once per process, where the
seed built it once per photo; the ratios in results.md are therefore in the
reference's favour. Prints one JSON object: per-photo seconds and stars, and
the seconds spent importing and loading the model.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

T0 = time.perf_counter()

import cv2  # noqa: E402
import imagehash  # noqa: E402
import numpy as np  # noqa: E402
import rawpy  # noqa: E402
import torch  # noqa: E402
from facenet_pytorch import MTCNN  # noqa: E402
from PIL import Image  # noqa: E402

THRESHOLD = 10.0
MAPPING = [(0, 5), (25, 4), (50, 3), (75, 2), (100, 1)]


def stars_for(blurry: int, total: int) -> int:
    share = 100.0 * blurry / total
    return next(s for limit, s in MAPPING if share <= limit)


def convert(src: Path, work: Path) -> Path:
    if src.suffix.upper() == ".ARW":
        with rawpy.imread(str(src)) as raw:
            rgb = raw.postprocess()
    else:
        rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
    out = work / (src.stem + ".JPEG")
    Image.fromarray(rgb).save(out, "JPEG")
    return out


def rate(path: Path, mtcnn: MTCNN) -> dict:
    im = Image.open(path).convert("RGB")
    ph = str(imagehash.phash(im))
    boxes, probs = mtcnn.detect(im)
    rgb = np.asarray(im)
    gray_full = None
    scores = []
    if boxes is not None:
        for box, p in zip(boxes, probs):
            if p is None or p <= 0.8:
                continue
            x1, y1, x2, y2 = [int(round(v)) for v in box]
            crop = rgb[max(0, y1):max(0, y2), max(0, x1):max(0, x2)]
            if crop.size == 0:
                continue
            scores.append(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
    if scores:
        stars = stars_for(sum(s < THRESHOLD for s in scores), len(scores))
    else:
        gray_full = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        stars = 5 if cv2.Laplacian(gray_full, cv2.CV_64F).var() >= THRESHOLD else 1
    return {"phash": ph, "faces": len(scores), "stars": stars}


def main() -> None:
    src_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    work = out_dir / "converted"
    work.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mtcnn = MTCNN(keep_all=True, device=device)
    ready = time.perf_counter() - T0
    photos = []
    for src in sorted(p for p in src_dir.iterdir() if p.suffix.upper() in (".ARW", ".JPG", ".JPEG")):
        t = time.perf_counter()
        r = rate(convert(src, work), mtcnn)
        dest = out_dir / f"{r['stars']}-stars"
        dest.mkdir(exist_ok=True)
        shutil.copy2(src, dest / src.name)
        photos.append({"name": src.name, "seconds": round(time.perf_counter() - t, 3), **r})
        print(f"  reference: {src.name} {photos[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)
    print(json.dumps({"ready_seconds": round(ready, 3), "threads": torch.get_num_threads(), "photos": photos}))


if __name__ == "__main__":
    main()
