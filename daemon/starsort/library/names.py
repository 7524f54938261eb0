"""Names in the library: star folders, stems, sidecar names, and collision-free plans.

A photo is filed as a group (RAW, JPEG, sidecars) under one stem, so a
RAW+JPEG pair and its XMP keep matching names in the star folder, which is
how Lightroom, darktable and digiKam recognise them as one photo.
"""
from __future__ import annotations

import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..analysis.filetype import JPEG_EXTS, RAW_EXTS

QUARANTINE = "quarantine"
# Copies of photos already filed (duplicates.on_import: skip, move mode).
DUPLICATES = "duplicates"
# Photos the photographer rejected (xmp:Rating -1): set aside, never deleted.
REJECTED = "rejected"
TEMP_PREFIX = ".starsort-"


def temp_path(folder: str | Path) -> str:
    """A fresh temp name in `folder`: ignored by the scan, swept from the library at start-up."""
    return os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}.tmp")


def stars_text(stars: int | None) -> str:
    """'1 star', '4 stars', as the log and messages say it."""
    if stars is None:
        return "no stars"
    return f"{stars} star" if int(stars) == 1 else f"{stars} stars"


def star_folder(stars: int) -> str:
    return "1-star" if stars == 1 else f"{stars}-stars"


def folder_for(stars: int, rejected: bool) -> str:
    """The library folder a filed photo belongs in."""
    return REJECTED if rejected else star_folder(stars)


def stars_of_folder(name: str) -> int | None:
    """5 for '5-stars', 1 for '1-star'; None for any other folder."""
    for s in range(1, 6):
        if name == star_folder(s):
            return s
    return None


@dataclass
class Member:
    role: str        # primary | pair | sidecar
    src: str


def photo_stem(path: str) -> str:
    """DSC00001 for DSC00001.ARW, and for its sidecars DSC00001.xmp and DSC00001.ARW.xmp."""
    name = os.path.basename(path)
    return name.split(".", 1)[0] if name.lower().endswith(".xmp") else os.path.splitext(name)[0]


def find_sidecars(photo_paths: list[str]) -> list[str]:
    """XMP sidecars next to the photo: IMG.xmp (Adobe) and IMG.EXT.xmp (darktable).

    Looked up by name, never by listing the folder: a camera folder holds up
    to 9,999 files, and a listing per photo filed made filing a full card
    quadratic (7 ms a photo at 10,000 files). The names probed are the
    photo's own spelling and its all-lower and all-upper case, each with
    .xmp and .XMP; a case-insensitive filesystem (macOS, exFAT, SMB) finds
    any other spelling too. A sidecar spelled otherwise on a case-sensitive
    one is left behind, and follows its photo when the next scan finds it.
    """
    if not photo_paths:
        return []
    folder = os.path.dirname(photo_paths[0])
    bases = [photo_stem(photo_paths[0])] + [os.path.basename(p) for p in photo_paths]
    found: dict[tuple[int, int], str] = {}
    for base in dict.fromkeys(v for b in bases for v in (b, b.lower(), b.upper())):
        for ext in (".xmp", ".XMP"):
            path = os.path.join(folder, base + ext)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            # One file under two spellings on a case-insensitive filesystem is one sidecar.
            if stat.S_ISREG(st.st_mode):
                found.setdefault((st.st_dev, st.st_ino), path)
    return sorted(found.values())


_UNSAFE = re.compile(r"[\x00-\x1f/\\]")


def dest_name(member: Member, old_stem: str, new_stem: str) -> str:
    name = os.path.basename(member.src)
    rest = name[len(old_stem):] if name.startswith(old_stem) else os.path.splitext(name)[1]
    return _UNSAFE.sub("_", new_stem + rest)


# Longest file name in bytes on Linux and macOS filesystems. A 255-byte
# original collides, and "<stem>_2" would then fail with ENAMETOOLONG on
# every retry; the stem is cut to make room for the suffix instead.
NAME_MAX = 255


def _fit_stem(stem: str, suffix: str, longest_rest: int) -> str:
    budget = NAME_MAX - len(suffix.encode()) - longest_rest
    raw = stem.encode("utf-8", "surrogateescape")
    if len(raw) <= budget:
        return stem + suffix
    # Cut on a character boundary: half a UTF-8 sequence is not a valid name.
    return raw[:max(0, budget)].decode("utf-8", "ignore") + suffix


# A stem is in use in a folder when a photo or a sidecar of it is there.
# Probed by name (a few hundred negative lookups, a fraction of a
# millisecond) rather than by listing the folder, whose size grows with the
# library: a star folder holds thousands of photos.
_PHOTO_EXTS = sorted(RAW_EXTS | JPEG_EXTS)
_PROBES = tuple(dict.fromkeys(
    [e for x in _PHOTO_EXTS for e in (x, x.upper())] + [".xmp", ".XMP"]
    + [e + s for x in _PHOTO_EXTS for e in (x, x.upper()) for s in (".xmp", ".XMP")]))


def stem_in_use(folder: Path, stem: str) -> bool:
    """Whether a photo or sidecar with this stem (in the usual cases of its extension) is in `folder`."""
    base = os.path.join(folder, stem)
    return os.path.lexists(base) or any(os.path.lexists(base + e) for e in _PROBES)


# What reading one entry of a folder's listing costs against one name probe (`lexists`),
# measured at 0.7 against 6 us a name here and about 0.3 against 1 us on a plain Linux disk:
# the higher, so a listing is chosen only where it is surely cheaper.
_ENTRY_COST = 0.3
# Bytes of a folder's st_size per entry, at the least: ext4 and btrfs take 24-30 for a
# camera's names, tmpfs 20. Estimating from fewer bytes counts more entries, and lists less.
_ENTRY_BYTES = 16


class StemsInUse:
    """`stem_in_use` for many photos filed into one folder together, from one listing when
    that costs less than their probes, else by probing.

    From a listing, stems compare without case: a folder holding dsc1.jpg has DSC1 in use,
    as it has on the case-insensitive disks of macOS and Windows (a probe on Linux would
    let DSC1.JPG sit beside it). A listing is as current as a probe: both are looked at just
    before the names are chosen, and the link that places a file fails on a name taken
    since (`fsops.place`).
    """

    def __init__(self, folder: Path, photos: int):
        self.folder = folder
        self.stems: set[str] | None = None
        try:
            entries = os.stat(folder).st_size / _ENTRY_BYTES
        except OSError:
            return                   # not there yet: probing finds nothing, cheaply
        if entries * _ENTRY_COST <= photos * (len(_PROBES) + 1):
            try:
                self.stems = _stems(os.listdir(folder))
            except OSError:
                self.stems = None

    def __call__(self, folder: Path, stem: str) -> bool:
        if self.stems is None or folder != self.folder:
            return stem_in_use(folder, stem)
        return stem.casefold() in self.stems


_PHOTO_EXT_SET = frozenset(e.casefold() for e in _PHOTO_EXTS)


def _stems(names: list[str]) -> set[str]:
    """The stems (casefolded) that these names put in use, as `stem_in_use` probes them:
    the name itself, its stem before a photo extension or .xmp, and before EXT.xmp."""
    out: set[str] = set()
    for name in names:
        n = name.casefold()
        out.add(n)
        base, ext = os.path.splitext(n)
        if ext == ".xmp" or ext in _PHOTO_EXT_SET:
            out.add(base)
            if ext == ".xmp":
                inner, ext2 = os.path.splitext(base)
                if ext2 in _PHOTO_EXT_SET:
                    out.add(inner)
    return out


def plan(dest_dir: Path, members: list[Member], reserved: set[str], in_use=stem_in_use) -> dict[str, str]:
    """Pick one stem for the whole group that no other photo in dest_dir uses: IMG, IMG_2, IMG_3 ...

    A stem already in use is taken even where none of this group's names
    would collide: DSC1.ARW from one card and DSC1.JPG from another would
    otherwise share DSC1.xmp, and Lightroom and darktable would take them for
    one RAW+JPEG pair. Extensions are probed in lower and upper case.
    """
    old_stem = photo_stem(members[0].src)
    longest_rest = max(len(dest_name(m, old_stem, "").encode("utf-8", "surrogateescape")) for m in members)
    reserved_stems = {photo_stem(r).casefold() for r in reserved}
    for n in range(1, 100_000):
        stem = _fit_stem(old_stem, "" if n == 1 else f"_{n}", longest_rest)
        if stem.casefold() in reserved_stems or in_use(dest_dir, stem):
            continue
        dsts = {m.src: str(dest_dir / dest_name(m, old_stem, stem)) for m in members}
        if len(set(dsts.values())) != len(dsts):
            continue
        if not any(os.path.lexists(d) or d in reserved for d in dsts.values()):
            return dsts
    raise RuntimeError(f"no free name for {old_stem} in {dest_dir}")

