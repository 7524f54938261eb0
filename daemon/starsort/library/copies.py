"""Whether a new photo's bytes are already in the library: a card imported twice.

Lightroom, Photo Mechanic and Rapid Photo Downloader all recognise a file
they already have; so does starsort (`duplicates.on_import: skip`). The test
is exact: every file of the new photo (its raw and its JPEG) is byte-identical
to the files of one filed photo. A look-alike (a re-encoded or resized copy)
is a different file and is filed; `starsort duplicates` lists those.

Hashing costs the service a read of the file, so it happens only when a
filed photo has exactly the same size: different photos almost never share
a byte count, so most photos are never hashed here. Filed photos moved by a
link were never read either; their hashes are filled in the first time a new
file of their size arrives, once each.
"""
from __future__ import annotations

import logging
import os

from ..store import photos
from .context import Library
from .fsops import sha256_file

log = logging.getLogger("starsort.library")


def already_filed(lib: Library, row: dict) -> dict | None:
    """The filed photo this one is a byte-identical copy of, else None."""
    if lib.in_place or lib.cfg.duplicates.on_import != "skip" or row["size"] is None:
        return None
    size, photo_id = row["size"], row["id"]
    if not lib.call(lambda db: photos.filed_with_size(db, size, photo_id)):
        return None
    sha = row["sha256"] or _sha(row["original_path"])
    pair_sha = (row["pair_sha256"] or _sha(row["pair_original_path"])) if row["pair_original_path"] else None
    if sha is None or (row["pair_original_path"] and pair_sha is None):
        return None                     # gone or unreadable: the normal path says so
    lib.call(lambda db: photos.hashed(db, photo_id, sha, pair_sha))
    for c in lib.call(lambda db: photos.unhashed_with_size(db, size)):
        c_sha, c_pair = _sha(c["current_path"]), _sha(c["pair_path"]) if c["pair_path"] else None
        lib.call(lambda db: photos.hashed(db, c["id"], c_sha, c_pair))
    for c in lib.call(lambda db: photos.filed_with_hash(db, size, sha, photo_id)):
        if pair_sha is not None:
            if not c["pair_path"]:
                continue                # the earlier import had no JPEG: this one's is new
            if c["pair_sha256"] is None:
                c["pair_sha256"] = _sha(c["pair_path"])
                lib.call(lambda db: photos.hashed(db, c["id"], None, c["pair_sha256"]))
            if c["pair_sha256"] != pair_sha:
                continue
        # The stored hash may be old: the library file may since have been
        # edited (a catalogue writing XMP into a JPEG) or removed.
        if _sha(c["current_path"]) == sha:
            return c
    return None


def _sha(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return sha256_file(path)
    except OSError as e:
        log.debug("cannot hash %s: %s", path, e)
        return None
