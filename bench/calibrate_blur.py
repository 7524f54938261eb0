"""Where the face measure's constants come from: the TUNING part of the blur set only.

    .venv/bin/python bench/calibrate_blur.py

Reads the labelled blur set (bench/qualityset.py; built on first use) and,
for its tuning part only (the held-out part is bench/quality.py's, and is
never read here), runs the pipeline's own decode, faces and blur code on
every photo. Prints:

* the two parts of the face score (the Laplacian's, `iso`, and the weakest
  direction's, `dir`, unscaled) per blur kind and strength;
* the directional scale: `blur.threshold` divided by the geometric middle
  of the gap between the sharp faces' 3rd percentile and the blurred faces'
  99th (faces at least `blur.min_face_px` wide), so the one default
  threshold sits in the middle of that gap;
* the combined score per kind, and how sharp faces spread over the margin
  bands (`stars.margins`), with the soft floor (`stars.soft_percent`)
  against mild and strong defocus;
* the smallest face that can be judged: sharp and blurred faces of 150 px
  or more, area-averaged down to each width (what a smaller sensor or a
  farther subject gives), scored as the pipeline scores them; the minimum
  is the smallest width from which on at least 97 % of sharp faces still
  reach the threshold and at least 97 % of blurred ones stay below it.
"""
from __future__ import annotations

import collections
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "daemon"))

import qualityset  # noqa: E402
from starsort.analysis import blur, decode, faces  # noqa: E402
from starsort.analysis.job import Job  # noqa: E402

BLURRED = ("defocus", "motion", "shake", "real-shake")
WIDTHS = (48, 64, 72, 80, 88, 96, 104, 112, 128)


def pct(v, qs=(0, 3, 10, 50, 90, 97, 100)) -> str:
    return " ".join(f"{x:8.3g}" for x in np.percentile(v, qs)) if len(v) else "-"


def measure(root: Path, items: list) -> list[dict]:
    """One row per face of each tuning photo, scored by the pipeline's code."""
    ctx = qualityset.analysis_context()
    rows = []
    for it in items:
        if it.part != "tuning":
            continue
        job = Job(1, str(root / it.file), "jpeg")
        decode.run(job, ctx)
        faces.run(job, ctx)
        if not job.faces:
            continue
        pixels, scale = blur.face_pixels(job)
        for f in job.faces:
            box = [v * scale for v in f.box]
            s = blur.face_scores(pixels, box, blur.noise_floor(pixels, box))
            # The face with what its noise floor is measured on around it, for the size sweep.
            x1, y1, x2, y2 = box
            m = blur.NOISE_REACH * (x2 - x1)
            cx1, cy1 = max(0, int(x1 - m)), max(0, int(y1 - m))
            rows.append({"kind": it.kind, "strength": it.strength.split(" ")[0], "source": it.source,
                         "px": x2 - x1, "iso": s.iso / blur.ISO_SCALE, "dir": s.dir / blur.DIR_SCALE,
                         "crop": pixels[cy1:int(y2 + m), cx1:int(x2 + m)].copy(),
                         "box": (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)})
    return rows


def main() -> None:
    from starsort.config import Config
    cfg = Config()
    t, min_px = cfg.blur.threshold, cfg.blur.min_face_px
    root, items = qualityset.build_blur()
    print(f"tuning part of {root}: {sum(1 for i in items if i.part == 'tuning')} photos")
    rows = measure(root, items)
    big = [r for r in rows if r["px"] >= min_px]

    print(f"\n== the two parts, unscaled, faces >= {min_px} px (percentiles 0 3 10 50 90 97 100) ==")
    keyed = collections.defaultdict(list)
    for r in big:
        key = r["kind"] if r["kind"] not in BLURRED else f"{r['kind']} {r['strength']}"
        keyed[key].append(r)
    for part in ("iso", "dir"):
        print(f"  {part}")
        for k in sorted(keyed):
            print(f"    {k:22s} n={len(keyed[k]):3d} {pct([r[part] for r in keyed[k]])}")

    sharp_dir = [r["dir"] for r in big if r["kind"] == "sharp"]
    blurred_dir = [r["dir"] for r in big if r["kind"] in BLURRED]
    lo, hi = np.percentile(blurred_dir, 99), np.percentile(sharp_dir, 3)
    mid = math.sqrt(lo * hi)
    print(f"\n== directional scale ==\n  blurred p99 {lo:.3g}, sharp p3 {hi:.3g}: middle {mid:.3g};"
          f" scale = {t:g} / {mid:.3g} = {t / mid:.3f} (in use: {blur.DIR_SCALE})")

    def score(r: dict) -> float:
        return min(r["iso"] * blur.ISO_SCALE, r["dir"] * blur.DIR_SCALE)

    print(f"\n== the combined score (threshold {t:g}), faces >= {min_px} px ==")
    for k in sorted(keyed):
        v = [score(r) for r in keyed[k]]
        print(f"    {k:22s} below {t:g}: {100 * np.mean(np.array(v) < t):5.1f}%  {pct(v)}")
    sharp = np.array([score(r) for r in big if r["kind"] == "sharp"])
    bands = cfg.stars.margins
    print("  sharp faces by margin band:", ", ".join(
        f"{s}★ (>= {p:g}%): {100 * np.mean(sharp >= t * (1 + p / 100)):.0f}%" for p, s in bands))
    soft = cfg.stars.soft_percent / 100 * t
    mild = np.array([score(r) for r in big if r["kind"] == "mild"])
    strong = np.array([score(r) for r in big if r["kind"] == "defocus" and r["strength"] == "w/15"])
    print(f"  soft floor {soft:.3g}: mild defocus at or above it {100 * np.mean(mild >= soft):.0f}%,"
          f" strong defocus (w/15) below it {100 * np.mean(strong < soft):.0f}%")

    print(f"\n== the smallest face to judge: faces of 150 px or more, made smaller ==")
    print("   area: area-averaged, as a sensor with fewer pixels sees it (no sharpening);"
          " sharpened: then an unsharp mask (radius 1 px, amount 0.6), as camera JPEGs and web"
          " exports are made")
    met = {"area": {}, "sharpened": {}}
    for width in WIDTHS:
        line = f"  {width:4d} px:"
        for how in ("area", "sharpened"):
            s_ok, b_ok = [], []
            for r in rows:
                if r["px"] < 150 or (r["kind"] != "sharp" and r["kind"] not in BLURRED):
                    continue
                x1, y1, x2, y2 = r["box"]
                f = width / (x2 - x1)
                crop = r["crop"]
                small = cv2.resize(crop, (max(8, round(crop.shape[1] * f)), max(8, round(crop.shape[0] * f))),
                                   interpolation=cv2.INTER_AREA)
                if how == "sharpened":
                    soft = cv2.GaussianBlur(small, (0, 0), 1.0)
                    small = cv2.addWeighted(small, 1.6, soft, -0.6, 0)
                box = [x1 * f, y1 * f, x2 * f, y2 * f]
                v = blur.face_score(small, box)
                (s_ok if r["kind"] == "sharp" else b_ok).append(v)
            s_rate, b_rate = 100 * np.mean(np.array(s_ok) >= t), 100 * np.mean(np.array(b_ok) < t)
            met[how][width] = s_rate >= 97 and b_rate >= 97
            line += f"  {how}: sharp >= {t:g} {s_rate:5.1f}%, blurred < {t:g} {b_rate:5.1f}%;"
        print(line + f" ({len(s_ok)} sharp, {len(b_ok)} blurred)")
    for how in met:
        chosen = next((w for w in WIDTHS if all(met[how][x] for x in WIDTHS if x >= w)), None)
        print(f"  {how}: smallest width from which on both hold: {chosen} px")
    print(f"  in use: blur.min_face_px = {min_px}")
    print("\n== real faces of the tuning photos by size (sharp photos; blurred: their blurred copies) ==")
    for lo, hi in ((0, 40), (40, 56), (56, 72), (72, 96), (96, 10000)):
        sh = [score(r) for r in rows if r["kind"] == "sharp" and lo <= r["px"] < hi]
        bl = [score(r) for r in rows if r["kind"] in BLURRED and lo <= r["px"] < hi]
        if sh or bl:
            print(f"  {lo:4d}-{hi:<5d} px: sharp n={len(sh):3d} >= {t:g}: {100 * np.mean(np.array(sh) >= t) if sh else 0:5.1f}%"
                  f" (min {min(sh) if sh else 0:.2f}); blurred n={len(bl):3d} < {t:g}:"
                  f" {100 * np.mean(np.array(bl) < t) if bl else 0:5.1f}%")


if __name__ == "__main__":
    main()
