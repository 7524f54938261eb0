"""The 24 MP photo set the speed benchmark runs on, generated once into a cache.

    .venv/bin/python bench/benchdata.py            # build (or reuse) the cache, print what is in it

Sources, in order of preference:

* ../shared/data (when present): the real camera JPEGs of `jpeg/` (the 24 MP
  A6400 frames as they are, the smaller bodies enlarged to 6000 px), portraits
  and group photos of `faces/` enlarged to 6000 px, the 24 MP
  `arw/DSC00008.ARW`, and more 24 MP ARWs built from some of those photos.
* tests/data otherwise (a fresh clone, or STARSORT_BENCH_DATA=tests): the
  fixture JPEGs enlarged to 6000 px and ARWs built from them. Fewer and less
  varied photos; results.md says which set a run used.

Enlarged JPEGs keep their EXIF (capture time, camera, orientation). Generated
ARWs follow the layout of the shared set's ARWs (see ../shared/data/README.md):
IFD0 with Make SONY, Model, Orientation and a 1616 px embedded preview JPEG
(as real ARWs carry), an Exif IFD with DateTimeOriginal, and a SubIFD holding
an uncompressed 14-bit RGGB mosaic of 6048 x 4032 with Sony black-level and
white-balance tags, so LibRaw identifies them as Sony and both `extract_thumb`
and a full `postprocess` work. The cache lives in bench/.cache (git-ignored);
delete it to rebuild.
"""
from __future__ import annotations

import io
import json
import os
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
TESTS = ROOT / "tests" / "data"
CACHE = Path(os.environ.get("STARSORT_BENCH_CACHE", ROOT / "bench" / ".cache"))
LONG_SIDE = 6000
RAW_W, RAW_H = 6048, 4032          # ILCE-7M3 / A6400-class sensor
PREVIEW_W = 1616                   # what Sony bodies embed
VERSION = 2                        # bump to rebuild caches made by an older generator

# Portraits and group photos from ../shared/data/faces (paths relative to it).
SHARED_FACES = [
    "face_recognition/test/obama_and_biden.jpg",
    "face_recognition/test/alex_lacamoire1.jpg",
    "face_recognition/test/kit_with_rose.jpg",
    "face_recognition/test/johnsnow_test1.jpg",
    "face_recognition/train/biden/biden.jpg",
    "face_recognition/extra/two_people.jpg",
    "openface/carell.jpg",
    "openface/lennon-1.jpg",
    "openface/longoria-cooper.jpg",
    "facenet_pytorch/multiface.jpg",
    "dlib/faces/2008_002470.jpg",
    "dlib/faces/bald_guys.jpg",
]
# Which of the enlarged photos also become ARWs (the preview is the photo).
# Landscape ones: the sensor is 3:2 landscape and the scene is cropped to it.
SHARED_ARW_FROM = ["faces/obama_and_biden.jpg", "faces/alex_lacamoire1.jpg", "faces/two_people.jpg",
                   "faces/lennon-1.jpg", "jpeg/SonySLT-A55__DSC3755.JPG"]
TEST_JPEGS = ["SonySLT-A55__DSC3755.JPG", "SonySLT-A55__DSC3756.JPG", "SonyDSC-P5_DSC00001.JPG",
              "106_NIKON-D3400-35MM_S.JPG", "106_NIKON-D3400-35MM_F.JPG", "clapton-2.jpg", "ivan.jpg",
              "kit_with_rose.jpg", "multiface.jpg", "no-faces.jpg"]
TEST_ARW_FROM = ["faces/multiface.jpg", "jpeg/SonySLT-A55__DSC3755.JPG", "jpeg/106_NIKON-D3400-35MM_S.JPG"]


def source() -> str:
    # STARSORT_BENCH_DATA=tests tries the fresh-clone path on a machine that has ../shared.
    if os.environ.get("STARSORT_BENCH_DATA") == "tests":
        return "tests"
    return "shared" if (SHARED / "jpeg").is_dir() else "tests"


def build(verbose: bool = True) -> dict[str, list[Path]]:
    """Make sure the cache holds the set for the available source; return {group: files}."""
    src = source()
    root = CACHE / f"data-{src}-v{VERSION}"
    manifest = root / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        return {g: [root / p for p in ps] for g, ps in m["groups"].items()}
    tmp = root.with_suffix(".building")
    for d in ("jpeg", "faces", "arw"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[str]] = {"jpeg": [], "faces": [], "arw": []}

    def say(msg: str) -> None:
        if verbose:
            print(f"  benchdata: {msg}", flush=True)

    if src == "shared":
        for p in sorted((SHARED / "jpeg").iterdir()):
            groups["jpeg"].append(_jpeg_24mp(p, tmp / "jpeg" / p.name, say))
        for rel in SHARED_FACES:
            p = SHARED / "faces" / rel
            if p.exists():
                groups["faces"].append(_jpeg_24mp(p, tmp / "faces" / p.name, say))
        real = SHARED / "arw" / "DSC00008.ARW"
        if real.exists():
            dst = tmp / "arw" / real.name
            _link_or_copy(real, dst)
            groups["arw"].append(str(dst.relative_to(tmp)))
        arw_from = SHARED_ARW_FROM
    else:
        for name in TEST_JPEGS:
            p = TESTS / name
            if p.exists():
                g = "faces" if name in ("clapton-2.jpg", "ivan.jpg", "kit_with_rose.jpg", "multiface.jpg") else "jpeg"
                groups[g].append(_jpeg_24mp(p, tmp / g / p.name, say))
        arw_from = TEST_ARW_FROM
    for i, rel in enumerate(arw_from):
        p = tmp / rel
        if not p.exists():
            continue
        dst = tmp / "arw" / f"GEN{i + 1:05d}.ARW"
        say(f"building {dst.name} from {rel}")
        write_arw(p, dst, seconds=i)
        groups["arw"].append(str(dst.relative_to(tmp)))
    (tmp / "manifest.json").write_text(json.dumps({"source": src, "groups": groups}, indent=1))
    tmp.rename(root)
    return {g: [root / p for p in ps] for g, ps in groups.items()}


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


def _jpeg_24mp(src: Path, dst: Path, say) -> str:
    """The photo with its long side at LONG_SIDE (unchanged if it already is), EXIF kept."""
    rel = str(Path(dst.parent.name) / dst.name)
    with Image.open(src) as im:
        # Sony bodies write MPO-flavoured JPEGs; Pillow names them MPO.
        if max(im.size) >= LONG_SIDE and im.format in ("JPEG", "MPO"):
            _link_or_copy(src, dst)
            return rel
        exif = im.info.get("exif")
        rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    f = LONG_SIDE / max(w, h)
    big = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
    out = Image.fromarray(big)
    dst = dst.with_suffix(".jpg") if dst.suffix.lower() not in (".jpg", ".jpeg") else dst
    out.save(dst, "JPEG", quality=92, **({"exif": exif} if exif else {}))
    say(f"{src.name}: {w}x{h} -> {out.size[0]}x{out.size[1]}")
    return str(Path(dst.parent.name) / dst.name)


# ---- ARW ----------------------------------------------------------------------

_ASCII, _SHORT, _LONG, _RATIONAL, _BYTE = 2, 3, 4, 5, 1
_SIZES = {_ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _BYTE: 1}


def _ifd_bytes(entries: list[tuple[int, int, list]], start: int, next_ifd: int = 0) -> tuple[bytes, bytes]:
    """(IFD, its out-of-line values) for an IFD written at `start`, values right after it."""
    entries = sorted(entries)
    head = struct.pack("<H", len(entries))
    data = b""
    data_start = start + 2 + 12 * len(entries) + 4
    for tag, typ, values in entries:
        if typ == _ASCII:
            raw = values.encode("ascii") + b"\0"
            count = len(raw)
        elif typ == _RATIONAL:
            raw = b"".join(struct.pack("<II", n, d) for n, d in values)
            count = len(values)
        else:
            fmt = {_SHORT: "H", _LONG: "I", _BYTE: "B"}[typ]
            raw = struct.pack("<" + fmt * len(values), *values)
            count = len(values)
        if len(raw) <= 4:
            head += struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\0")
        else:
            off = data_start + len(data)
            head += struct.pack("<HHII", tag, typ, count, off)
            data += raw + (b"\0" if len(raw) % 2 else b"")
    head += struct.pack("<I", next_ifd)
    return head, data


def write_arw(src: Path, dst: Path, seconds: int = 0) -> None:
    """A 24 MP Sony-layout ARW whose scene (mosaic and preview) is `src`, upright."""
    with Image.open(src) as im:
        rgb = np.asarray(im.convert("RGB"))
    # Centre crop to the sensor's aspect, so faces are not stretched.
    h, w = rgb.shape[:2]
    if w * RAW_H > h * RAW_W:
        cw = h * RAW_W // RAW_H
        rgb = rgb[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = w * RAW_H // RAW_W
        rgb = rgb[(h - ch) // 2:(h - ch) // 2 + ch]
    scene = cv2.resize(rgb, (RAW_W, RAW_H), interpolation=cv2.INTER_AREA if rgb.shape[1] > RAW_W else cv2.INTER_CUBIC)
    preview = Image.fromarray(cv2.resize(scene, (PREVIEW_W, round(PREVIEW_W * RAW_H / RAW_W)),
                                         interpolation=cv2.INTER_AREA))
    buf = io.BytesIO()
    preview.save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()

    # sRGB-ish -> linear, then undo the daylight white balance the WB tags declare.
    black, white = 512, 16383
    wb = (2048, 1024, 1024, 1536)  # R, G, G, B levels (0x7313)
    lin = (scene.astype(np.float32) / 255.0) ** 2.2
    mosaic = np.empty((RAW_H, RAW_W), np.float32)
    mosaic[0::2, 0::2] = lin[0::2, 0::2, 0] * (1024 / wb[0])
    mosaic[0::2, 1::2] = lin[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = lin[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = lin[1::2, 1::2, 2] * (1024 / wb[3])
    raw = (black + mosaic * (white - black)).clip(0, white).astype("<u2").tobytes()

    when = f"2024:05:18 14:{30 + seconds // 60:02d}:{seconds % 60:02d}"
    # Layout: header, IFD0 + values, Exif IFD + values, SubIFD + values, preview, mosaic.
    ifd0_at = 8
    n0 = 11
    # Sizes are needed for offsets: build once with dummy offsets, then for real.
    def ifd0(exif_at: int, sub_at: int, jpeg_at: int) -> tuple[bytes, bytes]:
        return _ifd_bytes([
            (0x00FE, _LONG, [1]), (0x0103, _SHORT, [6]), (0x010F, _ASCII, "SONY"),
            (0x0110, _ASCII, "ILCE-7M3"), (0x0112, _SHORT, [1]), (0x0131, _ASCII, "ILCE-7M3 v3.01"),
            (0x0132, _ASCII, when), (0x014A, _LONG, [sub_at]), (0x0201, _LONG, [jpeg_at]),
            (0x0202, _LONG, [len(jpeg)]), (0x8769, _LONG, [exif_at]),
        ], ifd0_at)

    def exif_ifd(at: int) -> tuple[bytes, bytes]:
        return _ifd_bytes([
            (0x829A, _RATIONAL, [(1, 250)]), (0x829D, _RATIONAL, [(40, 10)]), (0x8827, _SHORT, [400]),
            (0x9003, _ASCII, when), (0x9004, _ASCII, when), (0x920A, _RATIONAL, [(500, 10)]),
            (0xA002, _LONG, [RAW_W]), (0xA003, _LONG, [RAW_H]),
        ], at)

    def sub_ifd(at: int, raw_at: int) -> tuple[bytes, bytes]:
        return _ifd_bytes([
            (0x00FE, _LONG, [0]), (0x0100, _LONG, [RAW_W]), (0x0101, _LONG, [RAW_H]),
            (0x0102, _SHORT, [14]), (0x0103, _SHORT, [1]), (0x0106, _SHORT, [32803]),
            (0x0111, _LONG, [raw_at]), (0x0115, _SHORT, [1]), (0x0116, _LONG, [RAW_H]),
            (0x0117, _LONG, [len(raw)]), (0x011C, _SHORT, [1]), (0x7310, _SHORT, [black] * 4),
            (0x7313, _SHORT, list(wb)), (0x828D, _SHORT, [2, 2]), (0x828E, _BYTE, [0, 1, 1, 2]),
            (0xC61D, _LONG, [white]),
        ], at)

    h0, d0 = ifd0(0, 0, 0)
    exif_at = ifd0_at + len(h0) + len(d0)
    he, de = exif_ifd(exif_at)
    sub_at = exif_at + len(he) + len(de)
    hs, ds = sub_ifd(sub_at, 0)
    jpeg_at = sub_at + len(hs) + len(ds)
    raw_at = jpeg_at + len(jpeg) + (len(jpeg) % 2)
    h0, d0 = ifd0(exif_at, sub_at, jpeg_at)
    hs, ds = sub_ifd(sub_at, raw_at)
    assert n0 == struct.unpack_from("<H", h0)[0]
    with open(dst, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", ifd0_at))
        for part in (h0, d0, he, de, hs, ds, jpeg):
            f.write(part)
        if len(jpeg) % 2:
            f.write(b"\0")
        assert f.tell() == raw_at
        f.write(raw)


if __name__ == "__main__":
    sets = build()
    for g, files in sets.items():
        print(f"{g:6s} {len(files):3d} files")
        for p in files:
            if p.suffix.upper() == ".ARW":
                import rawpy
                with rawpy.imread(str(p)) as raw:
                    size, what = (raw.sizes.width, raw.sizes.height), f"preview {raw.extract_thumb().format.name}"
            else:
                with Image.open(p) as im:
                    size, what = im.size, ""
            print(f"    {p.name:34s} {p.stat().st_size / 1e6:6.1f} MB  {size[0]}x{size[1]}  {what}")
    sys.exit(0)
