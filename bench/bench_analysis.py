"""Per-stage speed of the analysis path, with the slow alternatives measured in the same run.

Medians over repeated runs, and ratios between the path starsort takes and the
one it avoids (full JPEG decode, full raw demosaic), since absolute timings on
shared machines are noisy. Reads ../shared/data when present, else tests/data.

    .venv/bin/python bench/bench_analysis.py [--repeat N]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import rawpy
import torch
from PIL import Image

from starsort import blur, decode, faces, phash, rate
from starsort.config import Config
from starsort.job import Job
from starsort.pipeline import Context

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = SHARED if SHARED.exists() else ROOT / "tests" / "data"
    jpeg = data / "jpeg" / "SonyA6400_DSC00007.JPG" if SHARED.exists() else data / "SonySLT-A55__DSC3755.JPG"
    raw = data / "arw" / "DSC00008.ARW" if SHARED.exists() else data / "two_people.ARW"
    face_raw = data / "arw" / "obama_and_biden.ARW" if SHARED.exists() else data / "two_people.ARW"
    cfg = Config()
    ctx = Context(cfg)
    t = time.perf_counter()
    ctx.models["mtcnn"] = faces.load_detector(cfg.faces)
    load_ms = (time.perf_counter() - t) * 1000
    r = args.repeat
    print(f"data: {data}; repeat {r}; torch threads 2")
    print(f"MTCNN load (once per worker): {load_ms:.0f} ms")

    def full_jpeg():
        with Image.open(jpeg) as im:
            im.load()

    ours_jpeg = median_ms(lambda: decode.run(Job(1, str(jpeg), "jpeg"), ctx), r)
    full = median_ms(full_jpeg, r)
    print(f"JPEG {jpeg.name}: starsort decode {ours_jpeg:.0f} ms vs full decode {full:.0f} ms "
          f"(x{full / ours_jpeg:.1f} faster)")

    def half():
        with rawpy.imread(str(raw)) as rp:
            rp.postprocess(half_size=True, use_camera_wb=True, output_bps=8)

    def fullraw():
        with rawpy.imread(str(raw)) as rp:
            rp.postprocess(use_camera_wb=True, output_bps=8)

    ours_raw = median_ms(lambda: decode.run(Job(1, str(raw), "raw"), ctx), r)
    half_ms = median_ms(half, r)
    full_ms = median_ms(fullraw, max(1, r // 2))
    print(f"raw {raw.name}: starsort decode (preview + integrity read) {ours_raw:.0f} ms vs half-size demosaic "
          f"{half_ms:.0f} ms (x{half_ms / ours_raw:.1f}) vs full demosaic {full_ms:.0f} ms (x{full_ms / ours_raw:.1f})")

    job = Job(1, str(face_raw), "raw")
    decode.run(job, ctx)
    print(f"analysis image {job.image.shape[1]}x{job.image.shape[0]} from {face_raw.name}")
    for name, fn in [("phash", lambda: phash.run(job, ctx)), ("faces (MTCNN)", lambda: faces.run(job, ctx)),
                     ("blur", lambda: blur.run(job, ctx)), ("rate", lambda: rate.run(job, ctx))]:
        print(f"  {name:14s} median {median_ms(fn, r):7.1f} ms")
    print(f"  faces found: {len(job.faces)}, scores {[round(f.blur_score, 1) for f in job.faces]}")

    print("face blur scores (threshold 10):")
    for name in ["arw/two_people.ARW", "arw/two_people_defocus.ARW", "blur/inspireface_blur_face.jpg",
                 "faces/mtcnn/ivan.jpg", "faces/openface/clapton-2.jpg"] if SHARED.exists() else \
            ["two_people.ARW", "two_people_defocus.ARW", "inspireface_blur_face.jpg", "ivan.jpg", "clapton-2.jpg"]:
        p = data / name
        j = Job(1, str(p), "raw" if p.suffix.upper() == ".ARW" else "jpeg")
        for stage in (decode, faces, blur):
            stage.run(j, ctx)
        print(f"  {p.name:30s} {[round(f.blur_score, 1) for f in j.faces]}")
    print("frame scores (frame threshold 10):")
    for k in "SFM":
        p = (data / "blur" if SHARED.exists() else data) / f"106_NIKON-D3400-35MM_{k}.JPG"
        j = Job(1, str(p), "jpeg")
        decode.run(j, ctx)
        print(f"  {p.name:30s} {blur.frame_score(j.image):.1f}")



if __name__ == "__main__":
    main()
