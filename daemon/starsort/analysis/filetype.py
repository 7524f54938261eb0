"""What a file is: by its name for intake, by its magic bytes before analysis.

The extension decides whether intake takes an interest; the first bytes decide
how the file is decoded. A JPEG saved as `.nef` is analysed as the JPEG it is
(its name is kept); a text file saved as `.JPG` is quarantined.

Other image formats are quarantined whatever their name, a PNG named `.JPG`
as much as one named `.png`: starsort rates camera files (JPEG and raw), so
the name never changes the outcome, no decoder but libjpeg and LibRaw ever
sees an untrusted file (PNG has its own zlib bombs), and a screenshot or an
export has no capture data to rate by. The reason names what the file is.

The first bytes are read without following a symlink and without blocking
on a FIFO: something other than a regular file can take a photo's name
between settling and analysis.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .job import BadInput

JPEG_EXTS = frozenset({".jpg", ".jpeg"})
# Sony first; then the other raw formats LibRaw reads.
RAW_EXTS = frozenset({
    ".arw", ".srf", ".sr2",
    ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".dng", ".raf", ".orf", ".rw2", ".rwl",
    ".pef", ".srw", ".kdc", ".dcr", ".erf", ".mrw", ".3fr", ".iiq", ".mos", ".x3f",
})
SIDECAR_EXTS = frozenset({".xmp"})

# Names other tools use while they are still writing a file.
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download")
# Folders of other tools' caches and of operating systems, never photos.
IGNORED_DIRS = frozenset({
    "captureone", "@eadir", "$recycle.bin", "system volume information", "lost+found",
})


# C0 controls, DEL, and the characters other tools treat as line breaks.
_CONTROLS = {**{c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, 0x85)},
             0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def printable(text: str) -> str:
    """`text` with control characters escaped, for log lines and status messages.

    File names may hold a newline; written raw, "a\\nERROR b.JPG" would
    forge a log record (rsync escapes them in its logs for this reason).
    """
    return text.translate(_CONTROLS)


def ext_kind(path: str | Path) -> str:
    """'raw', 'jpeg', 'sidecar' or 'other', from the extension, any case."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext in JPEG_EXTS:
        return "jpeg"
    if ext in RAW_EXTS:
        return "raw"
    if ext in SIDECAR_EXTS:
        return "sidecar"
    return "other"


def is_ignored(path: str | Path, root: str | Path) -> bool:
    """True for files intake must leave alone: hidden, temporary, or in another tool's cache."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        # Names that are not valid UTF-8 cannot be stored as TEXT; they are
        # logged by the scan and left where they are, never half-handled.
        return True
    rel = os.path.relpath(str(path), str(root))
    parts = rel.split(os.sep)
    if rel.startswith(".." + os.sep) or rel == "..":
        return True
    name = parts[-1]
    for part in parts:
        if part.startswith(".") or part.lower() in IGNORED_DIRS:
            return True
    if name.startswith("~") or name.lower().endswith(TEMP_SUFFIXES):
        return True
    return False


_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"II*\x00", "tiff"),            # ARW, NEF, CR2, DNG, KDC, ... are TIFF-based
    (0, b"MM\x00*", "tiff"),
    (0, b"II\x1a\x00\x00\x00HEAPCCDR", "crw"),
    (4, b"ftypcrx", "cr3"),
    (0, b"FUJIFILMCCD-RAW", "raf"),
    (0, b"IIRO", "orf"), (0, b"IIRS", "orf"), (0, b"MMOR", "orf"),
    (0, b"IIU\x00", "rw2"),
    (0, b"\x00MRM", "mrw"),
    (0, b"FOVb", "x3f"),
    (0, b"IIII", "iiq"),
]
_NOT_PHOTOS: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG", "a PNG"),
    (0, b"GIF8", "a GIF"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"%PDF", "a PDF"),
    (4, b"ftypheic", "a HEIC image"),
    (4, b"ftypmif1", "a HEIF image"),
    (4, b"ftypisom", "an MP4 video"),
    (4, b"ftypqt", "a QuickTime video"),
    (0, b"RIFF", "a RIFF file (video, audio or WebP)"),
    (0, b"SIMPLE  =", "a FITS file"),
]


def _head(path: str | Path, n: int = 32) -> tuple[os.stat_result, bytes]:
    """(stat, first n bytes) of a regular file, never following a symlink or blocking on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "not a regular file (a symlink took its place)", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, socket or device took its place)", str(path))
        return st, os.read(fd, n)
    finally:
        os.close(fd)


def sniff(path: str | Path) -> str | None:
    """The format family from the first bytes: 'jpeg', 'tiff', 'crw', ... or None."""
    return _family(_head(path)[1])


def _family(head: bytes) -> str | None:
    for off, sig, name in _SIGNATURES:
        if head[off:off + len(sig)] == sig:
            return name
    return None


def decode_kind(path: str | Path) -> str:
    """How to decode `path` ('jpeg' or 'raw'), or raise BadInput saying why not.

    FileNotFoundError: it is gone. Another OSError: it cannot be read (no
    permission, or no longer a regular file); the file is not to blame.
    """
    st, head = _head(path)
    if st.st_size == 0:
        raise BadInput("empty file (0 bytes)")
    family = _family(head)
    by_name = ext_kind(path)
    if family == "jpeg":
        return "jpeg"
    if family is not None:
        # TIFF-family bytes under a .JPG name: a raw with the wrong extension;
        # LibRaw will refuse it if it is some other TIFF.
        return "raw"
    for off, sig, what in _NOT_PHOTOS:
        if head[off:off + len(sig)] == sig:
            raise BadInput(f"not a photo: the file is {what}, named {Path(path).suffix or 'without extension'}"
                           "; starsort rates camera JPEGs and raws only")
    if by_name in ("jpeg", "raw"):
        raise BadInput(f"not an image: its first bytes match no {by_name.upper()} format")
    raise BadInput("unsupported file type")
