"""The labelled photo sets `make quality` (bench/quality.py) runs the real pipeline on.

    .venv/bin/python bench/qualityset.py          # build (or reuse) the sets, print their sizes and the split

Two sets, built from ../shared/data when it is there, else from tests/data
(a fresh clone: fewer photos, same kinds):

* **Blur.** Every face photo is a *source*, except dlib's "johns": those are
  150 px face chips dlib resampled from photos of unknown resolution, so how
  sharp they are is not known (several are visibly soft); they serve the
  burst set as different photos of one person instead. From each, at its own
  resolution: the sharp photo, defocused copies (Gaussian, sigma = face width
  / 60 "mild", then /40, /28, /20 and /15), linear motion blur (length = face
  width / 16, /11, /8 and /6, at eight angles 0-157.5 degrees: each source gets
  every angle, and the length cycles with the source so every (length, angle)
  pair occurs), camera shake (two random hand-shake trajectories, and the
  real kernel estimated from blur/106_*_S and _M, at two lengths), shallow
  depth of field (the background blurred, the faces kept), and, for photos
  with more than one face, the largest face kept sharp while the others are
  defocused. "Face width" is the width of the largest face MTCNN finds in the
  source. Blur is applied in linear light, sensor-like noise (1 level of 255)
  is added afterwards, and every image, the sharp one too, is saved the same
  way (JPEG quality 92, 4:2:0), so the sharp and the blurred differ only by
  the blur. Plus the real triplet blur/106_*_{S,F,M} (no face: rated on the
  frame) and the photos with no face.
* **Bursts.** Real bursts (`jpeg/SonySLT-A55__DSC3755..3757`,
  `SonyA6400_DSC00007/8`, with their own EXIF times), and synthetic handheld
  bursts of three frames from the face photos and four camera scenes: each
  frame shifted by up to 1.5 % of the frame each way, turned up to 0.3
  degree, exposed +-10 %, the frames 0.1-0.7 s apart with sub-second capture
  times (every other source) or 1-3 whole seconds apart without them; with
  sub-seconds, one more frame 0.1-0.3 s later in which the person moved 5-10
  % of the frame (a burst still). Against them, photos that must NOT merge,
  3-60 s after the burst at the same spot: the person moved 5-10 % the other
  way, or 15-25 %, or the photographer zoomed in 1.25-1.4x; and up to
  JOHNS_SESSION different photos of one person 4-15 s apart (dlib's face
  chips of one identity, which pHash finds alike; crops of one photo that
  dlib holds twice are kept once). All inside the 120 s window.

**The held-out split.** Sources are grouped so that no person and no scene
is in both parts: all photos of one identity (or of identities that share a
photo, such as Obama and Biden) form one group; every other photo is a group
of its own. Groups are ordered by SHA-256 of "SEED:group" (SEED = 12) and
dealt in that order to whichever part has fewer source photos so far (the
held-out part on a tie). Each set is split over its own groups (the blur
set's over every face photo, the chips included, before they are left
out). Calibration (bench/calibrate_blur.py) reads only the tuning part;
bench/quality.py reports the two parts separately. The split is a function
of the group names and the seed only, so it never moves when the code that
rates changes.

Files go to bench/.cache/quality-<source>-v<VERSION>/ (git-ignored); delete
it to rebuild.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TESTS = ROOT / "tests" / "data"
CACHE = Path(os.environ.get("STARSORT_BENCH_CACHE", ROOT / "bench" / ".cache"))
VERSION = 1
SEED = 12
JPEG_QUALITY = 92
NOISE = 1.0                    # sensor-like noise added after the blur, in levels of 255
# At most this many crops per identity of dlib's "johns" (150 px web face
# crops): there are 63, and taken whole they would outnumber every other source.
JOHNS_PER_IDENTITY = 4

# Blur strengths, relative to the width of the source's largest face.
MILD_DEFOCUS = 60
DEFOCUS = (40, 28, 20, 15)
MOTION = (16, 11, 8, 6)
ANGLES = tuple(22.5 * i for i in range(8))
SHAKE = (12, 6)

# ---- sources and the split ----------------------------------------------------------------------

# Photos of one identity, or of identities that appear together, are one group
# (paths relative to ../shared/data/faces). Photos not named here are a group each.
SHARED_GROUPS = {
    "obama+biden": [
        "face_recognition/train/obama/obama.jpg", "face_recognition/train/obama/obama2.jpg",
        "face_recognition/test/obama1.jpg", "face_recognition/extra/obama3.jpg",
        "face_recognition/extra/obama_partial_face.jpg", "face_recognition/extra/obama_partial_face2.jpg",
        "face_recognition/extra/obama-240p.jpg", "face_recognition/extra/obama_small.jpg",
        "face_recognition/test/obama_and_biden.jpg", "face_recognition/extra/two_people.jpg",
        "face_recognition/train/biden/biden.jpg", "face_recognition/train/biden/biden2.jpg"],
    "kit_harington+rose_leslie": [
        "face_recognition/train/kit_harington/john1.jpeg", "face_recognition/train/kit_harington/john2.jpeg",
        "face_recognition/test/johnsnow_test1.jpg", "face_recognition/train/rose_leslie/img1.jpg",
        "face_recognition/train/rose_leslie/img2.jpg", "face_recognition/test/kit_with_rose.jpg"],
    "alex_lacamoire": [
        "face_recognition/train/alex_lacamoire/img1.jpg", "face_recognition/test/alex_lacamoire1.jpg",
        "face_recognition/extra/alex-lacamoire.png"],
    "clapton": ["openface/clapton-1.jpg", "openface/clapton-2.jpg"],
    "lennon": ["openface/lennon-1.jpg", "openface/lennon-2.jpg"],
}
# Faces whose sharpness is not known: a truly blurred face (kept out of the
# sharp originals), and photos with no face at all.
NOT_SOURCES = {"mtcnn/no-faces.jpg", "dlib/faces/dogs.jpg"}
TEST_GROUPS = {
    "kit_harington+rose_leslie": ["kit_with_rose.jpg"],
    "clapton": ["clapton-2.jpg"],
    "ivan": ["ivan.jpg"],
    "multiface": ["multiface.jpg"],
}


@dataclass
class Source:
    path: str
    name: str          # unique, file-name safe
    group: str


def data_source() -> str:
    if os.environ.get("STARSORT_BENCH_DATA") == "tests":
        return "tests"
    return "shared" if (SHARED / "faces").is_dir() else "tests"


def face_sources(src: str | None = None, johns_per_identity: int | None = JOHNS_PER_IDENTITY) -> list[Source]:
    """The face photos; at most `johns_per_identity` of dlib's face crops per identity (None: all)."""
    src = src or data_source()
    out: list[Source] = []
    if src == "tests":
        for group, names in TEST_GROUPS.items():
            out += [Source(str(TESTS / n), Path(n).stem, group) for n in names if (TESTS / n).exists()]
        return out
    base = SHARED / "faces"
    grouped = {rel: g for g, rels in SHARED_GROUPS.items() for rel in rels}
    johns: dict[str, int] = {}
    for p in sorted(base.rglob("*")):
        rel = str(p.relative_to(base))
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png") or rel in NOT_SOURCES:
            continue
        if "johns" in p.parts:
            who = p.parent.name
            johns[who] = johns.get(who, 0) + 1
            if johns_per_identity is not None and johns[who] > johns_per_identity:
                continue
            group = who
        else:
            group = grouped.get(rel, rel)
        name = rel.replace("/", "_").rsplit(".", 1)[0]
        out.append(Source(str(p), name, group))
    return out


def split(groups: list[str], seed: int = SEED) -> dict[str, str]:
    """{group: 'tuning' | 'held-out'}, from the group names and their photo counts only."""
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    order = sorted(counts, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    part: dict[str, str] = {}
    n = {"tuning": 0, "held-out": 0}
    for g in order:
        side = "held-out" if n["held-out"] <= n["tuning"] else "tuning"
        part[g] = side
        n[side] += counts[g]
    return part


# ---- faces of a source -------------------------------------------------------------------------

_CTX = None


def analysis_context():
    global _CTX
    if _CTX is None:
        sys.path.insert(0, str(ROOT / "daemon"))
        from starsort.analysis import faces
        from starsort.config import Config
        from starsort.pipeline import Context
        cfg = Config()
        _CTX = Context(cfg)
        _CTX.models["mtcnn"] = faces.load_detector(cfg.faces)
    return _CTX


def load_rgb(path: str) -> np.ndarray:
    """The source's pixels, upright, RGB uint8."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"))


def detect_faces(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Face boxes (x1, y1, x2, y2) in `rgb`'s pixels, by the pipeline's own detector at its own size."""
    from starsort.analysis import faces as faces_stage
    from starsort.analysis.job import Job
    ctx = analysis_context()
    max_px = ctx.config.analysis.max_px
    s = min(1.0, max_px / max(rgb.shape[:2]))
    small = rgb if s >= 1 else cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)),
                                          interpolation=cv2.INTER_AREA)
    job = Job(1, "", "jpeg")
    job.image, job.scale = np.ascontiguousarray(small), s
    faces_stage.run(job, ctx)
    return [f.box for f in job.faces]


# ---- blur kernels ------------------------------------------------------------------------------

def _splat(points: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """A normalised kernel from sub-pixel points (N x 2, x y), bilinear-splatted, centred."""
    pts = points - points.mean(axis=0)
    r = int(math.ceil(np.abs(pts).max())) + 2
    k = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    w = np.ones(len(pts)) if weights is None else weights
    for (x, y), wt in zip(pts + r, w):
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        k[y0, x0] += wt * (1 - fx) * (1 - fy)
        k[y0, x0 + 1] += wt * fx * (1 - fy)
        k[y0 + 1, x0] += wt * (1 - fx) * fy
        k[y0 + 1, x0 + 1] += wt * fx * fy
    return k / k.sum()


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A straight smear `length` pixels long at `angle_deg` (0 = horizontal, counter-clockwise)."""
    n = max(2, int(math.ceil(length * 4)))
    t = np.linspace(-length / 2, length / 2, n)
    a = math.radians(angle_deg)
    return _splat(np.stack([t * math.cos(a), -t * math.sin(a)], axis=1))


def shake_kernel(extent: float, seed: int) -> np.ndarray:
    """A hand-shake trajectory (a random walk with inertia and a few jerks, after Boracchi
    and Foi's camera-shake model), scaled so its longer side spans `extent` pixels."""
    rng = np.random.default_rng(seed)
    n = 400
    v = rng.normal(size=2)
    v /= np.linalg.norm(v)
    x = np.zeros(2)
    pts = []
    for _ in range(n):
        jerk = rng.normal(size=2) * (3.0 if rng.random() < 0.02 else 0.25)
        v = 0.9 * v + jerk - 0.02 * x
        x = x + v * 0.1
        pts.append(x.copy())
    p = np.array(pts)
    p -= p.mean(axis=0)
    span = max(np.ptp(p[:, 0]), np.ptp(p[:, 1]), 1e-6)
    return _splat(p * (extent / span))


_REAL_KERNEL: list[np.ndarray | None] = []


def real_shake_kernel() -> np.ndarray | None:
    """The camera-shake kernel of blur/106_*_M, estimated against its sharp sibling _S.

    Regularised division of the two spectra (linear light, 1024 px wide, a
    Hann window against edge effects); the kernel is the connected blob
    around the peak above 12 % of it. About 25 px long at 1024 px, mostly
    horizontal: a real hand's smear, which the face set rescales to face
    widths. None when the pair is not there.
    """
    if _REAL_KERNEL:
        return _REAL_KERNEL[0]
    pair = [_find_blur(k) for k in "SM"]
    if None in pair:
        _REAL_KERNEL.append(None)
        return None

    def load(p: Path) -> np.ndarray:
        g = np.asarray(Image.open(p).convert("L"), np.float64) / 255.0
        g = g ** 2.2
        h = round(g.shape[0] * 1024 / g.shape[1])
        return cv2.resize(g, (1024, h), interpolation=cv2.INTER_AREA)
    s, m = (load(p) for p in pair)
    m = m * s.mean() / m.mean()
    win = np.outer(np.hanning(s.shape[0]), np.hanning(s.shape[1]))
    sf = np.fft.fft2((s - s.mean()) * win)
    mf = np.fft.fft2((m - m.mean()) * win)
    power = np.abs(sf) ** 2
    k = np.fft.fftshift(np.real(np.fft.ifft2(np.conj(sf) * mf / (power + np.median(power)))))
    cy, cx = np.unravel_index(np.argmax(k), k.shape)
    win_k = k[cy - 40:cy + 41, cx - 60:cx + 61].copy()
    mask = (win_k > 0.12 * win_k.max()).astype(np.uint8)
    _, labels = cv2.connectedComponents(mask)
    blob = np.where(labels == labels[40, 60], np.clip(win_k, 0, None), 0.0)
    ys, xs = np.nonzero(blob)
    blob = blob[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    _REAL_KERNEL.append(blob / blob.sum())
    return _REAL_KERNEL[0]


def scaled_kernel(k: np.ndarray, extent: float, rotate_deg: float = 0.0) -> np.ndarray:
    """`k` resized so its longer side spans `extent` pixels, then rotated."""
    f = extent / max(k.shape)
    out = cv2.resize(k, (max(1, round(k.shape[1] * f)), max(1, round(k.shape[0] * f))),
                     interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    if rotate_deg:
        side = int(math.ceil(math.hypot(*out.shape))) | 1
        pad = np.zeros((side, side))
        y0, x0 = (side - out.shape[0]) // 2, (side - out.shape[1]) // 2
        pad[y0:y0 + out.shape[0], x0:x0 + out.shape[1]] = out
        m = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), rotate_deg, 1.0)
        out = cv2.warpAffine(pad, m, (side, side), flags=cv2.INTER_LINEAR)
    out = np.clip(out, 0, None)
    return out / out.sum()


def _find_blur(k: str) -> Path | None:
    for p in (SHARED / "blur" / f"106_NIKON-D3400-35MM_{k}.JPG", TESTS / f"106_NIKON-D3400-35MM_{k}.JPG"):
        if p.exists():
            return p
    return None


# ---- applying blur -----------------------------------------------------------------------------

def _to_linear(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) / 255.0) ** 2.2


def _to_srgb(lin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.clip(lin, 0, 1) ** (1 / 2.2) * 255.0
    out += rng.normal(0.0, NOISE, out.shape).astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def convolve(lin: np.ndarray, kernel: np.ndarray | None, sigma: float | None = None) -> np.ndarray:
    if sigma is not None:
        return cv2.GaussianBlur(lin, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return cv2.filter2D(lin, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT)


def face_mask(shape: tuple[int, ...], boxes: list, feather: float) -> np.ndarray:
    """1 inside an ellipse around each face box (head and hair), 0 outside, feathered."""
    m = np.zeros(shape[:2], np.float32)
    for x1, y1, x2, y2 in boxes:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        cv2.ellipse(m, (round(cx), round(cy - 0.1 * (y2 - y1))),
                    (round(0.75 * (x2 - x1)), round(0.85 * (y2 - y1))), 0, 0, 360, 1.0, -1)
    if feather > 0:
        m = cv2.GaussianBlur(m, (0, 0), feather)
    return m[..., None]


@dataclass
class Variant:
    name: str
    kind: str              # sharp | defocus | motion | shake | real-shake | mild | shallow-dof | soft-others
    strength: str          # the blur, as "w/40", "w/8 at 22.5", ...
    blurred: bool          # fully blurred (must be <= 2 stars)


def variants(index: int, faces: list) -> list[tuple[Variant, dict]]:
    """What to make of source number `index` with these face boxes: (label, recipe) pairs."""
    out: list[tuple[Variant, dict]] = [(Variant("sharp", "sharp", "-", False), {})]
    out.append((Variant(f"mild_w{MILD_DEFOCUS}", "mild", f"w/{MILD_DEFOCUS}", False), {"sigma": MILD_DEFOCUS}))
    for d in DEFOCUS:
        out.append((Variant(f"defocus_w{d}", "defocus", f"w/{d}", True), {"sigma": d}))
    for j, a in enumerate(ANGLES):
        d = MOTION[(index + j) % len(MOTION)]
        out.append((Variant(f"motion_w{d}_a{a:g}", "motion", f"w/{d} at {a:g}", True), {"length": d, "angle": a}))
    for j, d in enumerate(SHAKE):
        out.append((Variant(f"shake_w{d}", "shake", f"w/{d} trajectory", True),
                    {"shake": d, "seed": 1000 * index + j}))
    if real_shake_kernel() is not None:
        for j, d in enumerate(SHAKE):
            rot = (index * 47 + j * 90) % 180
            out.append((Variant(f"realshake_w{d}", "real-shake", f"w/{d} rotated {rot}", True),
                        {"real": d, "rotate": rot}))
    out.append((Variant("shallow_dof", "shallow-dof", "background w/15", False), {"background": 15}))
    if len(faces) > 1:
        out.append((Variant("soft_others", "soft-others", "other faces w/15", False), {"others": 15}))
    return out


def render(rgb: np.ndarray, faces: list, recipe: dict, seed: int) -> np.ndarray:
    """The source with one recipe applied, in linear light, noise added, as sRGB uint8."""
    rng = np.random.default_rng(seed)
    lin = _to_linear(rgb)
    w = max(b[2] - b[0] for b in faces)
    if "sigma" in recipe:
        lin = convolve(lin, None, sigma=w / recipe["sigma"])
    elif "length" in recipe:
        lin = convolve(lin, motion_kernel(w / recipe["length"], recipe["angle"]))
    elif "shake" in recipe:
        lin = convolve(lin, shake_kernel(w / recipe["shake"], recipe["seed"]))
    elif "real" in recipe:
        lin = convolve(lin, scaled_kernel(real_shake_kernel(), w / recipe["real"], recipe["rotate"]))
    elif "background" in recipe:
        soft = convolve(lin, None, sigma=w / recipe["background"])
        m = face_mask(lin.shape, faces, feather=w / 20)
        lin = lin * m + soft * (1 - m)
    elif "others" in recipe:
        largest = max(range(len(faces)), key=lambda i: faces[i][2] - faces[i][0])
        for i, b in enumerate(faces):
            if i == largest:
                continue
            fw = b[2] - b[0]
            soft = convolve(lin, None, sigma=fw / recipe["others"])
            m = face_mask(lin.shape, [b], feather=fw / 20)
            lin = lin * (1 - m) + soft * m
    return _to_srgb(lin, rng)


def save_jpeg(rgb: np.ndarray, path: Path, when: datetime, model: str = "starsort quality set",
              subsec: str | None = None) -> None:
    exif = Image.Exif()
    exif[0x010F] = "starsort"            # Make
    exif[0x0110] = model                 # Model
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")   # DateTimeOriginal
    if subsec is not None:
        ifd[0x9291] = subsec              # SubSecTimeOriginal
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    Image.fromarray(rgb).save(tmp, "JPEG", quality=JPEG_QUALITY, subsampling=2, exif=exif.tobytes())
    tmp.rename(path)


# ---- the blur set ------------------------------------------------------------------------------

T0 = datetime(2025, 6, 1, 9, 0, 0)


@dataclass
class Item:
    file: str              # relative to the set's root
    source: str
    group: str
    part: str              # tuning | held-out
    kind: str
    strength: str
    blurred: bool
    faces: int = 0
    face_width: float = 0.0


def build_blur(verbose: bool = True) -> tuple[Path, list[Item]]:
    """Make sure the blur set is built; return its root and items."""
    src = data_source()
    root = CACHE / f"quality-{src}-v{VERSION}" / "blur"
    manifest = root / "manifest.json"
    if manifest.exists():
        return root, [Item(**d) for d in json.loads(manifest.read_text())]
    sources = face_sources(src)
    # The split is dealt over every face photo's group, the face chips' too, so that
    # leaving the chips out below moves no other group between the parts.
    part = split([s.group for s in sources])
    items: list[Item] = []
    for i, s in enumerate(sources):
        if "johns" in Path(s.path).parts:
            continue
        rgb = load_rgb(s.path)
        faces = detect_faces(rgb)
        if not faces:
            if verbose:
                print(f"  qualityset: {s.name}: no face found, not a source", flush=True)
            continue
        w = max(b[2] - b[0] for b in faces)
        for j, (v, recipe) in enumerate(variants(i, faces)):
            rel = f"{part[s.group]}/{s.name}/{v.name}.jpg"
            out = root / rel
            if not out.exists():
                save_jpeg(render(rgb, faces, recipe, seed=i * 1000 + j), out,
                          T0 + timedelta(hours=i, minutes=5 * j))
            items.append(Item(rel, s.name, s.group, part[s.group], v.kind, v.strength, v.blurred,
                              len(faces), round(w, 1)))
        if verbose:
            print(f"  qualityset: {s.name} ({part[s.group]}): {len(faces)} face(s), largest {w:.0f} px", flush=True)
    # The real triplet (no face: rated on the frame) and the photos with no face.
    for k, kind, blurred in (("S", "sharp", False), ("F", "defocus", True), ("M", "real-shake", True)):
        p = _find_blur(k)
        if p is not None:
            rel = f"frames/{p.name}"
            _link(p, root / rel)
            items.append(Item(rel, "106_NIKON-D3400-35MM", "106", "frames", kind, "real, no face", blurred))
    for p in (SHARED / "faces/mtcnn/no-faces.jpg", SHARED / "faces/dlib/faces/dogs.jpg", TESTS / "no-faces.jpg"):
        if p.exists() and not (root / "frames" / p.name).exists():
            rel = f"frames/{p.name}"
            _link(p, root / rel)
            items.append(Item(rel, p.stem, p.stem, "frames", "sharp", "real, no face", False))
    manifest.write_text(json.dumps([asdict(it) for it in items], indent=1))
    return root, items


# High ISO: the sharp and fully blurred photos again, with a camera's noise on top, in levels of
# 255 at the file's resolution (luminance, and half as much in each colour). Noise adds fine detail
# of its own, which a sharpness measure can take for a sharp face.
ISO_NOISE = 4.0


def build_noisy(root: Path, items: list[Item], sigma: float = ISO_NOISE) -> list[Item]:
    """Noisy copies of the blur set's sharp and fully blurred photos (built on first use), as Items."""
    out: list[Item] = []
    for it in items:
        if it.part == "frames" or not (it.kind == "sharp" or it.blurred):
            continue
        rel = f"noisy-{sigma:g}/{it.file}"
        dst = root / rel
        if not dst.exists():
            with Image.open(root / it.file) as im:
                rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
                exif = im.info.get("exif", b"")
            rng = np.random.default_rng(int(hashlib.sha256(it.file.encode()).hexdigest()[:8], 16))
            noise = rng.normal(0, sigma, rgb.shape[:2])[..., None] + rng.normal(0, sigma / 2, rgb.shape)
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(".part")
            Image.fromarray(np.clip(rgb + noise + 0.5, 0, 255).astype(np.uint8)).save(
                tmp, "JPEG", quality=JPEG_QUALITY, subsampling=2, exif=exif)
            tmp.rename(dst)
        out.append(Item(**{**asdict(it), "file": rel}))
    return out


# ---- the burst set -----------------------------------------------------------------------------

BURST_FRAMES = 3
# Camera JPEGs (paths relative to ../shared/data) that also become synthetic bursts.
SHARED_BURST_SCENES = ["jpeg/SonyDSC-H9.jpg", "jpeg/SonyXperiaZ2_D5403.jpg", "jpeg/SonyDSC-P5_DSC00001.JPG",
                       "blur/106_NIKON-D3400-35MM_S.JPG"]
TEST_BURST_SCENES = ["SonyDSC-P5_DSC00001.JPG", "106_NIKON-D3400-35MM_S.JPG"]
# Real bursts: near-identical frames the cameras took seconds apart (their own EXIF times).
SHARED_REAL_BURSTS = {"SonySLT-A55": ["jpeg/SonySLT-A55__DSC3755.JPG", "jpeg/SonySLT-A55__DSC3756.JPG",
                                      "jpeg/SonySLT-A55__DSC3757.JPG"],
                      "SonyA6400": ["jpeg/SonyA6400_DSC00007.JPG", "jpeg/SonyA6400_DSC00008.JPG"]}
TEST_REAL_BURSTS = {"SonySLT-A55": ["SonySLT-A55__DSC3755.JPG", "SonySLT-A55__DSC3756.JPG"]}
JOHNS_SESSION = 8                  # face crops of one identity shown as one session's different photos


@dataclass
class BurstItem:
    file: str              # relative to the set's root
    shot: str              # frames of one burst share it; every other photo has its own
    what: str              # burst-frame | moved-within-a-second | stepped-aside | moved-later | zoomed-in
                           # | same-person | real-burst
    group: str
    part: str
    seconds: float = 0.0   # capture time, from the set's start


def _burst_frame(rgb: np.ndarray, rng: np.random.Generator, shift: float = 0.015) -> np.ndarray:
    """One handheld frame: the scene shifted by up to `shift` of the frame, turned by up to
    0.5 degree, exposed +-10 %, cropped to 92 % (so every frame has the same size)."""
    h, w = rgb.shape[:2]
    dx, dy = rng.uniform(-shift, shift) * w, rng.uniform(-shift, shift) * h
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-0.3, 0.3), 1.0)
    m[:, 2] += (dx, dy)
    lin = _to_linear(rgb)
    lin = cv2.warpAffine(lin, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lin *= rng.uniform(0.9, 1.1)
    cw, ch = round(w * 0.92), round(h * 0.92)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return _to_srgb(lin[y0:y0 + ch, x0:x0 + cw], rng)


def _person_box(rgb: np.ndarray, faces: list) -> tuple[int, int, int, int]:
    """Head and shoulders down to the frame's bottom, around the largest face: three face
    widths wide, at most 60 % of the frame (so the person can move within it)."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = max(faces, key=lambda b: b[2] - b[0])
    fw, fh = x2 - x1, y2 - y1
    half = min(1.5 * fw, 0.3 * w)
    cx = (x1 + x2) / 2
    return (max(0, int(cx - half)), max(0, int(y1 - 0.6 * fh)), min(w, int(cx + half)), h)


def _stepped_aside(rgb: np.ndarray, faces: list, rng: np.random.Generator,
                   move: tuple[float, float] = (0.15, 0.25), away: bool = False) -> np.ndarray:
    """The same spot with the person moved sideways by `move` (a range, of the frame width;
    partly out of the frame if need be); where they stood, the background is filled in
    (OpenCV inpainting, at a quarter size). The person moves towards the side with more room,
    or the other way when `away`."""
    h, w = rgb.shape[:2]
    bx1, by1, bx2, by2 = _person_box(rgb, faces)
    towards_room = 1 if w - bx2 >= bx1 else -1
    shift = int(rng.uniform(*move) * w) * (-towards_room if away else towards_room)
    person = rgb[by1:by2, bx1:bx2].copy()
    mask = np.zeros((h, w), np.uint8)
    mask[by1:by2, bx1:bx2] = 255
    small = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (w // 4, h // 4), interpolation=cv2.INTER_NEAREST)
    filled = cv2.resize(cv2.inpaint(small, small_mask, 5, cv2.INPAINT_TELEA), (w, h), interpolation=cv2.INTER_LINEAR)
    out = rgb.copy()
    out[mask > 0] = filled[mask > 0]
    nx1, nx2 = bx1 + shift, bx2 + shift
    sx1, sx2 = max(0, -nx1), (bx2 - bx1) - max(0, nx2 - w)
    out[by1:by2, max(0, nx1):min(w, nx2)] = person[:, sx1:sx2]
    return out


def _zoomed_in(rgb: np.ndarray, faces: list, rng: np.random.Generator) -> np.ndarray:
    """The photographer zoomed in (1.25-1.4x) towards the face: the same frame size, tighter."""
    h, w = rgb.shape[:2]
    z = rng.uniform(1.25, 1.4)
    x1, y1, x2, y2 = max(faces, key=lambda b: b[2] - b[0])
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    cw, ch = w / z, h / z
    x0 = min(max(0.0, cx - cw / 2), w - cw)
    y0 = min(max(0.0, cy - ch / 2), h - ch)
    crop = rgb[int(y0):int(y0 + ch), int(x0):int(x0 + cw)]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)


def burst_sources(src: str) -> list[Source]:
    """Face photos (not the face crops: those are the same-person set) and camera scenes."""
    out = [s for s in face_sources(src) if "johns" not in s.path]
    base, names = (SHARED, SHARED_BURST_SCENES) if src == "shared" else (TESTS, TEST_BURST_SCENES)
    for rel in names:
        p = base / rel
        if p.exists():
            out.append(Source(str(p), Path(rel).stem, f"scene:{Path(rel).stem}"))
    return out


def build_bursts(verbose: bool = True) -> tuple[Path, list[BurstItem]]:
    """Make sure the burst set is built; return its root and items (see the module docstring)."""
    src = data_source()
    root = CACHE / f"quality-{src}-v{VERSION}" / "bursts"
    manifest = root / "manifest.json"
    if manifest.exists():
        return root, [BurstItem(**d) for d in json.loads(manifest.read_text())]
    sources = burst_sources(src)
    real = SHARED_REAL_BURSTS if src == "shared" else TEST_REAL_BURSTS
    johns = _johns_sessions() if src == "shared" else {}
    groups = [s.group for s in sources] + [f"real:{k}" for k in real] + list(johns)
    part = split(groups)
    items: list[BurstItem] = []
    start = datetime(2025, 7, 1, 8, 0, 0)
    for i, s in enumerate(sources):
        rng = np.random.default_rng(SEED * 1000 + i)
        rgb = load_rgb(s.path)
        faces = detect_faces(rgb) if not s.group.startswith("scene:") else []
        base = 3600.0 * i
        with_subsec = i % 2 == 0
        t = base
        frames = []
        for k in range(BURST_FRAMES):
            frames.append((_burst_frame(rgb, rng), t))
            t += rng.uniform(0.1, 0.7) if with_subsec else float(rng.integers(1, 4))
        extra: list[tuple[np.ndarray, float, str, str]] = []
        if faces:
            if with_subsec:
                # 0.1-0.3 s after the last frame the subject has moved a little (5-10 % of the
                # frame): still the burst.
                extra.append((_burst_frame(_stepped_aside(rgb, faces, rng, (0.05, 0.10)), rng),
                              frames[-1][1] + rng.uniform(0.1, 0.3), "moved-within-a-second", "burst"))
            extra.append((_burst_frame(_stepped_aside(rgb, faces, rng), rng), t + rng.uniform(5, 60),
                          "stepped-aside", "own"))
            # A small move the other way, a few seconds later: another photo of the same pose.
            extra.append((_burst_frame(_stepped_aside(rgb, faces, rng, (0.05, 0.10), away=True), rng),
                          t + rng.uniform(3, 60), "moved-later", "own"))
            extra.append((_burst_frame(_zoomed_in(rgb, faces, rng), rng), t + rng.uniform(5, 60), "zoomed-in", "own"))
        shot = f"{s.name}/burst"
        for k, (frame, when) in enumerate(frames):
            rel = f"{part[s.group]}/{s.name}/frame{k}.jpg"
            _save_burst(frame, root / rel, start, when, with_subsec)
            items.append(BurstItem(rel, shot, "burst-frame", s.group, part[s.group], round(when, 3)))
        for k, (frame, when, what, label) in enumerate(extra):
            rel = f"{part[s.group]}/{s.name}/{what}.jpg"
            _save_burst(frame, root / rel, start, when, with_subsec or what == "moved-within-a-second")
            items.append(BurstItem(rel, shot if label == "burst" else f"{s.name}/{what}", what, s.group,
                                   part[s.group], round(when, 3)))
        if verbose:
            print(f"  qualityset bursts: {s.name} ({part[s.group]}): {len(frames)} frames + {len(extra)}", flush=True)
    base_dir = SHARED if src == "shared" else TESTS
    for name, rels in real.items():
        g = f"real:{name}"
        for rel in rels:
            p = base_dir / rel
            dst = f"{part[g]}/real/{p.name}"
            _link(p, root / dst)
            items.append(BurstItem(dst, f"real/{name}", "real-burst", g, part[g]))
    for j, (g, paths) in enumerate(sorted(johns.items())):
        rng = np.random.default_rng(SEED * 7 + j)
        t = 3600.0 * (len(sources) + j)
        for p in paths:
            t += rng.uniform(4, 15)
            dst = f"{part[g]}/same-person/{Path(p).parent.name}_{Path(p).name}"
            _save_burst(load_rgb(p), root / dst, start, t, False)
            items.append(BurstItem(dst, f"same-person/{Path(p).name}", "same-person", g, part[g], round(t, 3)))
    manifest.write_text(json.dumps([asdict(it) for it in items], indent=1))
    return root, items


def _johns_sessions() -> dict[str, list[str]]:
    """Up to JOHNS_SESSION crops per identity, each a different photo: dlib's set holds a few
    crops of one photo twice (pHash 0-4 bits apart, the same picture), and those are kept once."""
    import imagehash
    out: dict[str, list[str]] = {}
    for d in sorted((SHARED / "faces" / "dlib" / "johns").iterdir()):
        if not d.is_dir():
            continue
        kept: list[tuple[str, imagehash.ImageHash]] = []
        for p in sorted(d.glob("*.jpg")):
            with Image.open(p) as im:
                h = imagehash.phash(im.convert("RGB"))
            if all(h - k > 4 for _, k in kept):
                kept.append((str(p), h))
            if len(kept) == JOHNS_SESSION:
                break
        out[f"johns:{d.name}"] = [p for p, _ in kept]
    return out


def _save_burst(rgb: np.ndarray, path: Path, start: datetime, seconds: float, subsec: bool) -> None:
    when = start + timedelta(seconds=seconds)
    digits = f"{when.microsecond // 10000:02d}" if subsec else None
    save_jpeg(rgb, path, when.replace(microsecond=0), subsec=digits)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


if __name__ == "__main__":
    srcs = face_sources()
    parts = split([s.group for s in srcs])
    for side in ("tuning", "held-out"):
        gs = sorted({s.group for s in srcs if parts[s.group] == side})
        print(f"{side}: {sum(1 for s in srcs if parts[s.group] == side)} sources in {len(gs)} groups: {', '.join(gs)}")
    root, items = build_blur()
    print(f"blur set: {len(items)} photos in {root}")
    root, bitems = build_bursts()
    print(f"burst set: {len(bitems)} photos in {root}")
