"""A filed photo's rating and pick label, in the XMP that Lightroom, darktable and digiKam read.

The policy lives here (which files get a rating, when a burst's pick label
moves, what undo needs recorded); `library.xmp` does the reading and
merging of the XMP itself through exiv2.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..analysis import filetype
from ..store import artifacts, photos
from . import xmp
from .context import Library
from .fsops import sha256_file


def write(lib: Library, photo_id: int) -> None:
    """The pipeline's last step: rate a photo just filed, and move its burst's pick label."""
    row = lib.photo(photo_id)
    write_xmp(lib, photo_id, [p for p in (row["current_path"], row["pair_path"]) if p])
    relabel(lib, row["cluster_id"])


def write_xmp(lib: Library, photo_id: int, files: list[str], label_only: bool = False) -> None:
    """Write the photo's rating, and its pick label, for every file of it in `files`.

    Every sidecar written is recorded in `artifacts` (with the bytes it
    had before our first merge) so that `starsort undo` can take it back.
    """
    x = lib.cfg.xmp
    row = lib.photo(photo_id)
    stars = row["stars"]
    if not x.enabled or not stars:
        return
    rating = xmp.REJECTED if row["rejected"] or (int(stars) == 1 and x.rate_rejects_as == -1) else int(stars)
    label = x.pick_label if is_burst_pick(lib, row) else None
    unlabel = row["xmp_label"] if label is None else None
    if label_only:
        rating = None
    wrote_label = False
    for f in files:
        photo = Path(f)
        targets = [s for s in xmp.sidecar_paths(photo, "both")
                   if s in xmp.sidecar_paths(photo, x.sidecar_naming) or os.path.lexists(s)]
        try:
            before = {str(s): _small_file(s) for s in targets}
        except OSError as e:
            # Unreadable: merging blind could lose another tool's fields,
            # and undo could not give the file back as it was.
            lib.event("WARNING", f"cannot read the sidecar of {f} ({e}); its rating is not written")
            continue
        try:
            written = xmp.write_rating(photo, rating, x.sidecar_naming, label=label, unlabel=unlabel)
            wrote_label = True
        except xmp.XmpError as e:
            written = e.written
            lib.event("WARNING", f"could not write the XMP rating for {f}: {e}")
        except Exception as e:  # noqa: BLE001 - a sidecar must never stop filing
            written = []
            lib.event("WARNING", f"could not write the XMP rating for {f}: {e}")
        for sidecar in written:
            _record_artifact(lib, photo_id, str(sidecar), "sidecar", before.get(str(sidecar)))
        if x.xmp_in_jpeg and filetype.ext_kind(f) == "jpeg" and row["kind"] != "other":
            try:
                xmp.write_rating_in_jpeg(photo, rating, label=label, unlabel=unlabel)
                _record_artifact(lib, photo_id, f, "jpeg-xmp", b"")
                if lib.in_place:
                    # The original changed size and mtime: without this, the
                    # next rescan would take it for a new photo.
                    lib.remember(photo_id, [f])
            except Exception as e:  # noqa: BLE001 - the rating inside a JPEG is a bonus
                lib.event("WARNING", f"could not write the rating into {f}: {e}")
    if wrote_label:
        lib.call(lambda db: photos.set_label(db, photo_id, label))


def relabel(lib: Library, cluster_id: int | None) -> None:
    """Move the pick label within a burst: a sharper frame that arrived later
    takes it, and the frame filed earlier as the pick gives it back."""
    if cluster_id is None or not lib.cfg.xmp.enabled:
        return
    label = lib.cfg.xmp.pick_label
    for r in lib.call(lambda db: photos.stale_labels(db, cluster_id, label)):
        write_xmp(lib, r["id"], [p for p in (r["current_path"], r["pair_path"]) if p], label_only=True)


def is_burst_pick(lib: Library, row: dict) -> bool:
    # A photo alone in its cluster is its own pick; labelling every such
    # photo would make the label mean nothing.
    if not row["is_pick"] or row["cluster_id"] is None:
        return False
    return lib.call(lambda db: photos.cluster_size(db, row["cluster_id"])) >= 2


def _record_artifact(lib: Library, photo_id: int, path: str, kind: str, before: bytes | None) -> None:
    try:
        sha = sha256_file(path)
    except OSError:
        return
    now = time.time()
    lib.call(lambda db: artifacts.record(db, photo_id, path, kind, before, sha, now))


def _small_file(path: Path) -> bytes | None:
    """A sidecar's bytes before we merge into it (None: it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            return f.read(xmp.MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
