"""Helpers the tests share, defined once: fixtures on disk, file digests, trees, waiting."""
from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Callable

import pyexiv2

DATA = Path(__file__).parent / "data"


def missing_desktop_tool(reason: str) -> None:
    """Skip a test whose desktop or system tool (Xvfb, trayer, dunst, systemd-analyze) is not here,
    with a one-line reason; in CI (STARSORT_REQUIRE_DESKTOP=1) a missing tool fails it instead."""
    import os

    import pytest
    if os.environ.get("STARSORT_REQUIRE_DESKTOP") == "1":
        pytest.fail(f"STARSORT_REQUIRE_DESKTOP=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def copy_fixture(name: str, dest: Path, as_name: str | None = None) -> Path:
    """Copy tests/data/NAME into DEST (as AS_NAME)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / (as_name or name)
    shutil.copyfile(DATA / name, target)
    return target


def sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def files(root: Path, *, hidden: bool = True, symlinks: bool = True) -> list[Path]:
    """Every file under root, sorted: hidden ones (a name starting with '.') unless
    hidden=False, and symlinks to files unless symlinks=False."""
    return sorted(p for p in Path(root).rglob("*")
                  if p.is_file() and (hidden or not p.name.startswith("."))
                  and (symlinks or not p.is_symlink()))


def tree(root: Path) -> dict[str, str]:
    """{relative path: SHA-256} of every file under root, hidden ones included."""
    return {str(p.relative_to(root)): sha256(p) for p in files(root)}


def read_xmp(path: Path) -> dict:
    """Every XMP key exiv2 reads from a sidecar (or a JPEG's packet)."""
    with pyexiv2.ImageData(Path(path).read_bytes()) as img:
        return img.read_xmp()


def wait_for(pred: Callable[[], object], timeout: float = 5.0, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


# ---- photos filed in process, as the service files them ----------------------------------------

def analysis_result(photo_id: int, stars: int, scores: list[float], phash: str = "8f3a0b1c2d3e4f50",
                    captured: str = "2026-11-22T14:00:00", sharpness: float | None = None,
                    widths: list[float] | None = None) -> dict:
    """A worker's answer for a 600x400 photo with these face scores (none: rated on the frame),
    each face `widths[i]` pixels wide where it was judged (none: 100 px)."""
    widths = widths or [100.0] * len(scores)
    faces = [{"box": [10.0, 10.0, 10.0 + w, 130.0], "landmarks": [[0, 0]] * 5, "probability": 0.99,
              "blur_score": s, "blurry": s < 10.0, "judged_px": w} for s, w in zip(scores, widths)]
    return {"photo_id": photo_id, "original_size": [600, 400], "decode_source": "jpeg-draft",
            "captured_at": captured, "camera_model": "TEST", "phash": phash, "faces": faces,
            "frame_score": 40.0, "stars": stars, "rated_on": "faces" if scores else "frame",
            "sharpness": sharpness if sharpness is not None else (sum(scores) / len(scores) if scores else 40.0),
            "exif": {}, "exif_missing": None, "exif_problems": []}


def filed(lib, folders, name: str = "DSC00001", *, pair: bool = True, stars: int = 5,
          scores: list[float] | None = None, sidecar: str | None = None, **result) -> int:
    """A RAW+JPEG pair (or a JPEG), with `sidecar` as the photographer's own XMP, analysed as
    `analysis_result` says and filed by the pipeline's own steps; returns its id."""
    from starsort import pipeline
    from starsort.store import photos
    inbox = folders["inbox"]
    jpeg = copy_fixture("ivan.jpg", inbox, f"{name}.JPG")
    raw = copy_fixture("two_people.ARW", inbox, f"{name}.ARW") if pair else None
    if sidecar is not None:
        (inbox / f"{name}.xmp").write_text(sidecar)
    now = time.time()
    photo_id = lib.call(lambda db: photos.queue(db, original=str(raw or jpeg), pair=str(jpeg) if raw else None,
                                                kind="raw" if raw else "jpeg", size=None, mtime_ns=None, now=now))
    pipeline.after_analysis(lib, photo_id, analysis_result(photo_id, stars, scores if scores is not None else [50.0],
                                                           **result))
    assert lib.photo(photo_id)["state"] == "done"
    return photo_id


# ---- XMP sidecars the tests write ---------------------------------------------------------------

# The smallest sidecar: an empty XMP packet.
EMPTY_SIDECAR = "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"

# A sidecar with a title only; .format(title=...) fills it in.
TITLED_SIDECAR = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>'
    '<rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title></rdf:Description>'
    '</rdf:RDF></x:xmpmeta>')

# A sidecar as darktable and Lightroom leave it: keywords, a darktable colour
# label bag, a Camera Raw setting and a darktable history struct.
FOREIGN_SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="1"
   crs:Exposure2012="+0.50"
   darktable:xmp_version="5">
   <darktable:colorlabels>
    <rdf:Seq>
     <rdf:li>3</rdf:li>
    </rdf:Seq>
   </darktable:colorlabels>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday</rdf:li>
     <rdf:li>Ærø</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="exposure" darktable:enabled="1"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""
