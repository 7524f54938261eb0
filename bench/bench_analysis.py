"""Speed and calibration of the analysis stages (decode, phash, faces, blur, rate).

Prints median timings, the face-score and frame-score calibration tables the
defaults in blur.py were chosen from, and the stars of the reference pairs.
Reads ../shared/data when present (the full set), else tests/data (a subset).

    .venv/bin/python bench/bench_analysis.py [--repeat N] [--threads N] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from starsort.analysis import blur, decode, faces, phash, rate  # noqa: E402
from starsort.config import Config  # noqa: E402
from starsort.analysis.job import Job  # noqa: E402
from starsort.pipeline import Context, analyse  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TESTS = ROOT / "tests" / "data"
RAW_EXTS = {".arw", ".crw", ".kdc", ".dng", ".nef", ".cr2"}


def find(*names: str) -> Path | None:
    """The first of `names` (shared-data paths) found in shared/data, else by file name in tests/data."""
    for n in names:
        if (SHARED / n).exists():
            return SHARED / n
        if (TESTS / Path(n).name).exists():
            return TESTS / Path(n).name
    return None


def kind(p: Path) -> str:
    return "raw" if p.suffix.lower() in RAW_EXTS else "jpeg"


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def timings(ctx: Context, repeat: int) -> None:
    print(f"\n== median timings, {repeat} runs ==")
    for name in ["jpeg/SonyA6400_DSC00007.JPG", "jpeg/SonySLT-A55__DSC3755.JPG", "arw/two_people.ARW",
                 "arw/DSC00008.ARW", "raw/CanonG2_CRW_0305.CRW", "raw/KodakDC120_P003913.KDC"]:
        p = find(name)
        if p is None:
            continue
        job = Job(1, str(p), kind(p))
        ms = median_ms(lambda: decode.run(Job(1, str(p), kind(p)), ctx), repeat)
        decode.run(job, ctx)
        print(f"  decode {p.name:28s} {ms:6.1f} ms  {job.decode_source:11s} analysis "
              f"{job.image.shape[1]}x{job.image.shape[0]} of {job.original_size[0]}x{job.original_size[1]}")
    for name in ["jpeg/SonyA6400_DSC00007.JPG", "arw/two_people.ARW",
                 "faces/face_recognition/test/obama_and_biden.jpg"]:
        p = find(name)
        if p is None:
            continue
        job = Job(1, str(p), kind(p))
        decode.run(job, ctx)
        cells = []
        for stage in (phash, faces, blur, rate):
            ms = median_ms(lambda: stage.run(job, ctx), repeat)
            cells.append(f"{stage.__name__.split('.')[-1]} {ms:6.1f}")
        total = median_ms(lambda: analyse(Job(1, str(p), kind(p)), ctx), repeat)
        print(f"  stages {p.name:28s} " + "  ".join(cells)
              + f"  | whole analysis {total:6.1f} ms, {len(job.faces)} face(s)")


def face_rows(ctx: Context, paths: list[Path], label: str,
              gaussian: bool) -> list[tuple[str, str, float, float]]:
    """(file, label, face width px, score) per face; Gaussian-blurred copies too if asked."""
    rows = []
    for p in paths:
        job = Job(1, str(p), kind(p))
        for stage in (decode, faces):
            stage.run(job, ctx)
        if not job.faces:
            rows.append((p.name, label + " (no face found)", 0.0, float("nan")))
            continue
        pixels, scale = blur.face_pixels(job)
        for f in job.faces:
            box = [v * scale for v in f.box]
            width = box[2] - box[0]
            rows.append((p.name, label, width, blur.face_score(pixels, box)))
            if gaussian:
                # Blur relative to the face: sigma = width / 60 (2.5 px on a 150 px face).
                soft = cv2.GaussianBlur(pixels, (0, 0), max(1.0, width / 60))
                rows.append((p.name, "gaussian w/60", width, blur.face_score(soft, box)))
    return rows


def calibration(ctx: Context, quick: bool) -> None:
    threshold = ctx.config.blur.threshold
    sharp = [find(n) for n in ["arw/two_people.ARW", "arw/lennon_rotated.ARW", "arw/obama_and_biden.ARW",
                               "faces/mtcnn/ivan.jpg", "faces/openface/clapton-2.jpg",
                               "faces/face_recognition/test/kit_with_rose.jpg"]]
    if SHARED.exists() and not quick:
        sharp += sorted((SHARED / "faces" / "openface").glob("*.jpg"))
        sharp += sorted((SHARED / "faces" / "face_recognition" / "train").glob("*/*.jp*g"))
        sharp += sorted((SHARED / "faces" / "face_recognition" / "test").glob("*.jpg"))
        sharp += sorted((SHARED / "faces" / "facenet_pytorch").glob("*.jpg"))
    sharp = list(dict.fromkeys(p for p in sharp if p is not None))
    blurred = [p for p in (find("arw/two_people_defocus.ARW"), find("blur/inspireface_blur_face.jpg")) if p]
    rows = face_rows(ctx, sharp, "sharp", gaussian=True) + face_rows(ctx, blurred, "blurred", gaussian=False)
    print(f"\n== face scores (threshold {threshold}) ==")
    for name, label, width, score in rows:
        flag = "" if np.isnan(score) else ("blurry" if score < threshold else "sharp")
        print(f"  {name:32s} {label:16s} {width:6.0f} px  {score:7.1f}  {flag}")
    print("  summary:")
    for label in ("sharp", "gaussian w/60", "blurred"):
        s = [r[3] for r in rows if r[1] == label and not np.isnan(r[3])]
        if s:
            wrong = sum((x < threshold) if label == "sharp" else (x >= threshold) for x in s)
            print(f"    {label:14s} n={len(s):3d} min {min(s):6.1f} median {statistics.median(s):6.1f} "
                  f"max {max(s):6.1f}  on the wrong side of {threshold}: {wrong}")

    print(f"\n== frame scores (frame threshold {ctx.config.blur.frame_threshold}) ==")
    frames = [find(f"blur/106_NIKON-D3400-35MM_{k}.JPG") for k in "SFM"]
    if SHARED.exists():
        frames += sorted((SHARED / "jpeg").glob("*.*"))
    frames += [find("arw/two_people.ARW"), find("arw/two_people_defocus.ARW"),
               find("faces/mtcnn/no-faces.jpg")]
    for p in dict.fromkeys(p for p in frames if p is not None):
        job = Job(1, str(p), kind(p))
        decode.run(job, ctx)
        print(f"  {p.name:32s} {blur.frame_score(job.image):7.1f}")

    print("\n== stars ==")
    for group in (["106_NIKON-D3400-35MM_S.JPG", "106_NIKON-D3400-35MM_F.JPG", "106_NIKON-D3400-35MM_M.JPG"],
                  ["two_people.ARW", "two_people_defocus.ARW", "lennon_rotated.ARW"]):
        for name in group:
            p = find(f"blur/{name}", f"arw/{name}")
            if p is None:
                continue
            job = analyse(Job(1, str(p), kind(p)), ctx)
            print(f"  {name:32s} {job.stars} stars on {job.rated_on:5s} sharpness {job.sharpness:7.1f} "
                  f"faces {[round(f.blur_score, 1) for f in job.faces]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--quick", action="store_true", help="calibrate on the fixture subset only")
    args = ap.parse_args()
    cfg = Config()
    ctx = Context(cfg)
    t = time.perf_counter()
    ctx.models["mtcnn"] = faces.load_detector(cfg.faces, threads=args.threads)
    print(f"data: {SHARED if SHARED.exists() else TESTS}; torch threads {args.threads}; "
          f"MTCNN load {(time.perf_counter() - t) * 1000:.0f} ms (once per worker)")
    Image.MAX_IMAGE_PIXELS = cfg.analysis.max_image_pixels
    timings(ctx, args.repeat)
    calibration(ctx, args.quick)


if __name__ == "__main__":
    main()
