"""Star ratings in XMP sidecars, for Lightroom and for darktable/digiKam.

Lightroom, Bridge and Capture One read `DSC0001.xmp` next to a raw; darktable
and digiKam read `DSC0001.ARW.xmp`; the config calls these
`adobe` and `ext`. We write `xmp:Rating` (and
optionally `xmp:Label`) with exiv2 through pyexiv2, and nothing else of theirs.

Rules this module keeps:

* The photo itself is never opened for writing, with one opt-in exception:
  `write_rating_in_jpeg` (config `xmp.xmp_in_jpeg`) replaces a JPEG with a
  copy whose XMP segment holds the rating, because Lightroom reads a JPEG's
  rating only from inside the file.
* Ratings: 1-5 stars, or -1 for rejected (`xmp.rate_rejects_as`). The burst
  pick carries `xmp:Label`; when the pick moves, the label is removed from the
  old pick only if it still reads what we wrote.
* An existing sidecar is merged into, never replaced by a smaller one: every
  key another tool wrote survives (darktable #12322 lost users' edits that way).
  A sidecar exiv2 cannot parse is left alone and reported, not overwritten.
* A sidecar is written to `.starsort-<random>.tmp` in the same folder (the
  watcher ignores that name), fsynced, then renamed over the sidecar name, so a
  crash leaves either the old sidecar or the new one, never half of one.

pyexiv2 facts this relies on (checked against pyexiv2 2.16.0, bundled exiv2 0.28.8):

* exiv2 treats a standalone XMP packet as an image of type
  `application/rdf+xml`; `pyexiv2.ImageData(bytes)` opens one from memory and
  `get_bytes()` returns the re-serialised packet. Working on bytes means we do
  the file I/O (non-ASCII paths, temp file, fsync) ourselves.
* A packet exiv2 cannot parse raises RuntimeError ("XMP Toolkit error 201",
  "unknown image type"); we turn that into XmpError and keep the file.
* exiv2 normalises the array type of properties it knows: a `dc:subject`
  written as rdf:Seq comes back as rdf:Bag (its schema type). Values and
  unknown namespaces (darktable:history structs and so on) round-trip intact.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import os
import stat
import threading
from pathlib import Path
from typing import Iterator

import pyexiv2

from .names import temp_path

__all__ = ["XmpError", "NAMINGS", "sidecar_paths", "write_rating", "read_rating", "write_rating_in_jpeg",
           "read_label"]

NAMINGS = ("adobe", "ext", "both")
# The name older configs used for `ext`.
_ALIASES = {"darktable": "ext"}

#: xmp:Rating -1 is "rejected" for Lightroom, darktable and digiKam.
REJECTED = -1

#: Our own namespace, for provenance only; no other tool reads it.
STARSORT_NS = "https://starsort.invalid/xmp/1.0/"
STARSORT_PREFIX = "starsort"

#: Temp files in a photo folder start and end like this; the watcher skips them.

#: A sidecar larger than this is not an XMP sidecar we should be parsing.
MAX_SIDECAR_BYTES = 64 * 1024 * 1024

_XMP_MIME = "application/rdf+xml"

# The smallest packet exiv2 accepts as an XMP sidecar; a new sidecar starts
# from it in memory (it is never written to disk as is).
_EMPTY_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    '  <rdf:Description rdf:about=""/>\n'
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>\n'
).encode("utf-8")

# Another program may rewrite the sidecar while we merge; we re-read and merge
# again this many times before giving up.
_ATTEMPTS = 3

_ns_lock = threading.Lock()
_ns_registered = False


class XmpError(Exception):
    """A sidecar could not be read or written. The photo is untouched.

    `path` is the sidecar concerned; `written` (from write_rating) lists the
    sidecars that were written before the failure.
    """

    def __init__(self, message: str, path: Path | None = None, written: list[Path] | None = None):
        super().__init__(message)
        self.path = path
        self.written = written or []


def sidecar_paths(photo: Path, naming: str) -> list[Path]:
    """Given a photo and a naming scheme, return its sidecar paths.

    adobe gives `DSC0001.xmp`, ext (or its old name darktable) gives
    `DSC0001.ARW.xmp`, both gives the two (adobe first). A RAW+JPEG pair
    shares its adobe sidecar, since both files have the same stem. Raise
    ValueError for an unknown naming.
    """
    photo = Path(photo)
    naming = _ALIASES.get(naming, naming)
    if naming not in NAMINGS:
        raise ValueError(f"unknown XMP naming {naming!r}; expected one of {', '.join(NAMINGS)}")
    adobe = photo.with_name(photo.stem + ".xmp")
    darktable = photo.with_name(photo.name + ".xmp")
    if naming == "adobe":
        return [adobe]
    if naming == "ext":
        return [darktable]
    return [adobe, darktable]


def write_rating(photo: Path, stars: int | None, naming: str, label: str | None = None,
                 unlabel: str | None = None) -> list[Path]:
    """Merge `stars` (1-5, or -1 for rejected) and, if given, `label` into the photo's sidecars.

    The sidecars are those `naming` names plus any sidecar of the other style
    that already exists, so a darktable sidecar next to an Adobe one does not
    keep a stale rating. `unlabel` removes xmp:Label where it still equals
    that text (the burst pick moved away), and leaves a label the
    photographer changed since. Return the sidecars written. Raise ValueError
    for bad arguments, and XmpError if any sidecar could not be written (the
    others are still tried; `XmpError.written` lists those that were). The
    photo is never modified.
    """
    photo = Path(photo)
    values = _values(stars, label, unlabel)

    sidecars = sidecar_paths(photo, naming)
    sidecars += [s for s in sidecar_paths(photo, "both") if s not in sidecars and os.path.lexists(s)]
    if any(s.name.casefold() == photo.name.casefold() for s in sidecars):
        # A "photo" named *.xmp: its adobe sidecar would be the file itself.
        raise ValueError(f"{photo} would be its own sidecar; refusing to write it")

    written: list[Path] = []
    failures: list[str] = []
    first_failed: Path | None = None
    for sidecar in sidecars:
        try:
            _merge_into(sidecar, values)
        except XmpError as e:
            failures.append(str(e))
            first_failed = first_failed or sidecar
        else:
            written.append(sidecar)
    if failures:
        raise XmpError("; ".join(failures), path=first_failed, written=written)
    return written


_REGIONS = "Xmp.mwg-rs.Regions"
_LIST = f"{_REGIONS}/mwg-rs:RegionList"
_PERSONS = "Xmp.iptcExt.PersonInImage"
_OURS = f"Xmp.{STARSORT_PREFIX}.People"      # the names starsort wrote last time


def write_people(photo: Path, people: list[dict], size: tuple[int, int], naming: str) -> list[Path]:
    """Merge the named people of a photo into its sidecars, for Lightroom, digiKam and others:
    one MWG face region each (`mwg-rs:Regions`: name, type Face, the box as a normalised
    centre and size, against the image's dimensions) and `Iptc4xmpExt:PersonInImage`.

    `people` is [{"name", "box": (x1, y1, x2, y2)}] in original-image pixels; `size` the
    image's (width, height). Regions and names another tool wrote stay; the ones starsort
    wrote before (remembered in `starsort:People`) are replaced, so a renamed or removed
    person does not linger. Returns the sidecars written.
    """
    photo = Path(photo)
    w, h = size
    names = [p["name"] for p in people]
    _register_namespace()

    def steps(before: dict) -> list[dict]:
        ours_before = set(before.get(_OURS) or [])
        regions = _regions(before)
        kept = [r for r in regions if not (r.get("mwg-rs:Name") in ours_before and r.get("mwg-rs:Type", "Face") == "Face")]
        delete = {k: None for k in before if k.startswith(_REGIONS) and before[k] != 'type="Struct"'}
        delete.update({k: None for k in before if k.startswith(_LIST + "[")})
        persons = [n for n in (before.get(_PERSONS) or []) if n not in ours_before]
        add: dict = {}
        if kept or people:
            add[_LIST] = []
        n = 0
        for r in kept:
            n += 1
            for sub, v in r.items():
                # A nested array of another tool's region is made again before its items.
                add[f"{_LIST}[{n}]/{sub}"] = [] if v in ('type="Seq"', 'type="Bag"', 'type="Alt"') else v
        for p in people:
            n += 1
            x1, y1, x2, y2 = p["box"]
            add.update({
                f"{_LIST}[{n}]/mwg-rs:Name": p["name"],
                f"{_LIST}[{n}]/mwg-rs:Type": "Face",
                f"{_LIST}[{n}]/mwg-rs:Area/stArea:x": f"{(x1 + x2) / 2 / w:.5f}",
                f"{_LIST}[{n}]/mwg-rs:Area/stArea:y": f"{(y1 + y2) / 2 / h:.5f}",
                f"{_LIST}[{n}]/mwg-rs:Area/stArea:w": f"{(x2 - x1) / w:.5f}",
                f"{_LIST}[{n}]/mwg-rs:Area/stArea:h": f"{(y2 - y1) / h:.5f}",
                f"{_LIST}[{n}]/mwg-rs:Area/stArea:unit": "normalized",
            })
        if n:
            add.update({f"{_REGIONS}/mwg-rs:AppliedToDimensions/stDim:w": str(w),
                        f"{_REGIONS}/mwg-rs:AppliedToDimensions/stDim:h": str(h),
                        f"{_REGIONS}/mwg-rs:AppliedToDimensions/stDim:unit": "pixel"})
        for k, v in before.items():      # other tools' fields of the Regions struct itself
            if k.startswith(_REGIONS + "/") and not k.startswith(_LIST) and "AppliedToDimensions" not in k \
                    and v != 'type="Struct"':
                add[k] = v
        after_persons = persons + [x for x in names if x not in persons]
        tail = {_PERSONS: after_persons if after_persons else None, _OURS: names if names else None}
        deletions = {**delete, **({_PERSONS: None} if _PERSONS in before else {}),
                     **({_OURS: None} if _OURS in before else {})}
        return [deletions, add, {k: v for k, v in tail.items() if v is not None}]

    sidecars = sidecar_paths(photo, naming)
    sidecars += [s for s in sidecar_paths(photo, "both") if s not in sidecars and os.path.lexists(s)]
    written: list[Path] = []
    failures: list[str] = []
    for sidecar in sidecars:
        if not people and not os.path.lexists(sidecar):
            continue
        try:
            _merge_into(sidecar, steps)
        except XmpError as e:
            failures.append(str(e))
        else:
            written.append(sidecar)
    if failures:
        raise XmpError("; ".join(failures), written=written)
    return written


def _regions(before: dict) -> list[dict]:
    """The packet's MWG regions, each as {sub-path: value}, in order."""
    out: dict[int, dict] = {}
    prefix = _LIST + "["
    for k, v in before.items():
        if not k.startswith(prefix) or v == 'type="Struct"':
            continue
        i, _, rest = k[len(prefix):].partition("]")
        if rest.startswith("/") and i.isdigit():
            out.setdefault(int(i), {})[rest[1:]] = v
    return [out[i] for i in sorted(out)]


def read_people(sidecar: Path) -> dict:
    """{"regions": [{"name", "x", "y", "w", "h"}], "persons": [...]} as a sidecar holds them."""
    data, _ = _read_existing(sidecar)
    before = _parse(sidecar, data)
    regions = [{"name": r.get("mwg-rs:Name"), **{c: float(r.get(f"mwg-rs:Area/stArea:{c}", "nan"))
                                                   for c in "xywh"}} for r in _regions(before)]
    return {"regions": regions, "persons": list(before.get(_PERSONS) or [])}


def write_rating_in_jpeg(photo: Path, stars: int | None, label: str | None = None, unlabel: str | None = None) -> None:
    """Merge the rating (and label) into a JPEG's own XMP packet, for Lightroom.

    exiv2 merges the packet, as for a sidecar; we splice it into the file as
    its APP1 XMP segment, replacing the old one or going in after the EXIF
    segment, so every other byte (EXIF, maker notes, the image data) stays
    as it was. Letting exiv2 rewrite the whole JPEG would re-serialise the
    EXIF block and move the maker note's offsets. The new file is written
    next to the JPEG, fsynced and renamed over it only if the JPEG did not
    change meanwhile. Raise XmpError if it cannot be done (the JPEG is then
    untouched): not a JPEG, or a packet too large for one segment.
    """
    photo = Path(photo)
    values = _values(stars, label, unlabel)
    for _ in range(_ATTEMPTS):
        try:
            data, sig = _read_existing(photo, for_writing=True)
        except FileNotFoundError:
            raise XmpError(f"{photo}: vanished before its rating was written", path=photo) from None
        segments = _jpeg_header_segments(photo, data)
        old = next(((a, b) for a, b in segments if data[a + 4:a + 4 + len(_XMP_APP1)] == _XMP_APP1), None)
        packet = data[old[0] + 4 + len(_XMP_APP1):old[1]] if old else _EMPTY_PACKET
        packet = _merged_bytes(photo, packet, values)
        if len(packet) + len(_XMP_APP1) + 2 > 0xFFFF:
            raise XmpError(f"{photo}: its XMP would not fit in one JPEG segment; left alone", path=photo)
        segment = b"\xff\xe1" + (len(packet) + len(_XMP_APP1) + 2).to_bytes(2, "big") + _XMP_APP1 + packet
        if old:
            out = data[:old[0]] + segment + data[old[1]:]
        else:
            # After APP0 (JFIF) and APP1 (EXIF), where cameras and Lightroom put it.
            at = 2
            for a, b in segments:
                if data[a + 1] not in (0xE0, 0xE1):
                    break
                at = b
            out = data[:at] + segment + data[at:]
        if _replace_if_unchanged(photo, out, sig):
            return
    raise XmpError(f"{photo}: kept changing while we wrote its rating; try again later", path=photo)


_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"


def _jpeg_header_segments(photo: Path, data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each marker segment before the image data; XmpError if not a JPEG."""
    if data[:3] != b"\xff\xd8\xff":
        raise XmpError(f"{photo}: not a JPEG; left alone", path=photo)
    out = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:   # start of scan, end of image
            return out
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if end > len(data):
            break
        out.append((pos, end))
        pos = end
    raise XmpError(f"{photo}: its JPEG header is damaged; left alone", path=photo)


def read_label(path: Path) -> str | None:
    """xmp:Label of a sidecar, or of a JPEG's own XMP; None if it has none or does not exist."""
    try:
        data, _ = _read_existing(Path(path))
    except FileNotFoundError:
        return None
    try:
        with pyexiv2.ImageData(data) as img:
            return img.read_xmp().get("Xmp.xmp.Label")
    except (RuntimeError, ValueError) as e:
        raise XmpError(f"{path}: {_one_line(e)}", path=Path(path)) from None


def read_rating(sidecar: Path) -> int | None:
    """Given a sidecar, return its xmp:Rating, or None if it has none or does not exist.

    Raise XmpError if the file is not a readable XMP packet or the rating is
    not a number.
    """
    sidecar = Path(sidecar)
    try:
        data, _ = _read_existing(sidecar)
    except FileNotFoundError:
        return None
    meta = _parse(sidecar, data)
    value = meta.get("Xmp.xmp.Rating")
    if value is None:
        return None
    try:
        # XMP defines xmp:Rating as a Real; Lightroom and darktable write ints.
        return int(float(str(value).strip()))
    except (ValueError, OverflowError):
        raise XmpError(f"{sidecar}: xmp:Rating is not a number: {value!r}", path=sidecar) from None


# ---- internals ---------------------------------------------------------------

class _DropIfEqual(str):
    """A value meaning: remove this key if the packet holds exactly this text."""


def _values(stars: int | None, label: str | None, unlabel: str | None) -> dict[str, str]:
    """The keys to merge. stars None leaves the rating alone (only the label changes),
    so moving a burst's pick label never undoes a rating the photographer changed."""
    if stars is not None and (isinstance(stars, bool) or not isinstance(stars, int)
                              or not (1 <= stars <= 5 or stars == REJECTED)):
        raise ValueError(f"stars must be an int from 1 to 5, or -1 for rejected, not {stars!r}")
    for name, v in (("label", label), ("unlabel", unlabel)):
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise ValueError(f"{name} must be a non-empty string or None, not {v!r}")
    _register_namespace()
    values: dict[str, str] = {}
    if stars is not None:
        values = {
            "Xmp.xmp.Rating": str(stars),
            f"Xmp.{STARSORT_PREFIX}.Stars": str(stars),
            f"Xmp.{STARSORT_PREFIX}.RatedAt": _dt.datetime.now(_dt.timezone.utc)
            .astimezone()
            .isoformat(timespec="seconds"),
        }
    if label is not None:
        values["Xmp.xmp.Label"] = label
    elif unlabel is not None:
        values["Xmp.xmp.Label"] = _DropIfEqual(unlabel)
    return values


def _resolve(values: dict[str, str], before: dict) -> dict[str, str | None]:
    """`values` with each _DropIfEqual turned into a deletion (None) or dropped."""
    out: dict[str, str | None] = {}
    for k, v in values.items():
        if isinstance(v, _DropIfEqual):
            if before.get(k) == str(v):
                out[k] = None
        else:
            out[k] = v
    return out


def _register_namespace() -> None:
    """Register our provenance namespace with exiv2, once per process."""
    global _ns_registered
    with _ns_lock:
        if not _ns_registered:
            pyexiv2.registerNs(STARSORT_NS, STARSORT_PREFIX)
            _ns_registered = True


def _read_existing(sidecar: Path, for_writing: bool = False) -> tuple[bytes, tuple[int, int, int]]:
    """Return the sidecar's bytes and an (inode, size, mtime_ns) signature.

    Raise FileNotFoundError if it does not exist, XmpError if it is not a
    regular file (a symlink is not followed), is too large, or is read-only
    and `for_writing`.
    """
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(sidecar, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise XmpError(f"{sidecar}: is a symlink; left alone", path=sidecar) from None
        raise XmpError(f"{sidecar}: cannot read: {e.strerror}", path=sidecar) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise XmpError(f"{sidecar}: is not a regular file; left alone", path=sidecar)
        if for_writing and not st.st_mode & stat.S_IWUSR:
            # Someone made it read-only, perhaps to protect their edits.
            raise XmpError(f"{sidecar}: is read-only; left alone", path=sidecar)
        if st.st_size > MAX_SIDECAR_BYTES:
            raise XmpError(f"{sidecar}: {st.st_size} bytes is too large for a sidecar; left alone", path=sidecar)
        data = f.read(MAX_SIDECAR_BYTES + 1)
    return data, (st.st_ino, st.st_size, st.st_mtime_ns)


def _signature(sidecar: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(sidecar)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _open_xmp(sidecar: Path, data: bytes) -> pyexiv2.ImageData:
    """Open `data` as an XMP packet; raise XmpError if exiv2 sees anything else."""
    try:
        img = pyexiv2.ImageData(data)
    except (RuntimeError, ValueError) as e:
        raise XmpError(f"{sidecar}: not a readable XMP sidecar ({_one_line(e)}); left alone", path=sidecar) from None
    try:
        mime = img.get_mime_type()
    except RuntimeError as e:
        img.close()
        raise XmpError(f"{sidecar}: {_one_line(e)}", path=sidecar) from None
    if mime != _XMP_MIME:
        img.close()
        raise XmpError(f"{sidecar}: holds {mime}, not an XMP packet; left alone", path=sidecar)
    return img


def _parse(sidecar: Path, data: bytes) -> dict:
    img = _open_xmp(sidecar, data)
    try:
        return img.read_xmp()
    except RuntimeError as e:
        raise XmpError(f"{sidecar}: {_one_line(e)}", path=sidecar) from None
    finally:
        img.close()


def _merged_bytes(sidecar: Path, data: bytes, values: dict[str, str]) -> bytes:
    """Return `data` (an XMP packet) with `values` set and every other key kept."""
    img = _open_xmp(sidecar, data)
    try:
        before = img.read_xmp()
        if callable(values):
            # Changes that depend on what the packet holds (people's regions):
            # steps applied in order, deletions before the arrays they renumber.
            steps = values(before)
            changes = {k: v for step in steps for k, v in step.items()}
            for step in steps:
                if step:
                    img.modify_xmp(step)
        else:
            changes = _resolve(values, before)
            img.modify_xmp(changes)
        out = img.get_bytes()
    except RuntimeError as e:
        raise XmpError(f"{sidecar}: exiv2 could not update it: {_one_line(e)}", path=sidecar) from None
    finally:
        img.close()
    # Belt and braces for the one promise that matters: nothing of another
    # tool's is dropped. Re-parse what exiv2 produced and compare keys (a
    # new sidecar had none to drop).
    if not before:
        return out
    after = _parse(sidecar, out)
    lost = sorted(set(before) - set(after) - {k for k, v in changes.items() if v is None}
                  - {k for k in before if callable(values) and k.startswith(_REGIONS)})
    if lost:
        raise XmpError(f"{sidecar}: merging would drop {', '.join(lost[:5])}; left alone", path=sidecar)
    return out


def _merge_into(sidecar: Path, values: dict[str, str]) -> None:
    for _ in range(_ATTEMPTS):
        try:
            data, sig = _read_existing(sidecar, for_writing=True)
        except FileNotFoundError:
            data, sig = _EMPTY_PACKET, None
        out = _merged_bytes(sidecar, data, values)
        if _replace_if_unchanged(sidecar, out, sig):
            return
    raise XmpError(f"{sidecar}: kept changing while we merged into it; try again later", path=sidecar)


def _replace_if_unchanged(sidecar: Path, data: bytes, expected: tuple[int, int, int] | None) -> bool:
    """Write `data` to a temp file next to `sidecar`, fsync it and rename it over.

    Return False (and write nothing) if the sidecar changed since it was read,
    so the caller merges again rather than dropping another program's edit.
    """
    folder = sidecar.parent
    tmp = Path(temp_path(folder))
    mode = 0o666  # minus the umask, like any file the user creates
    if expected is not None:
        try:
            mode = stat.S_IMODE(os.lstat(sidecar).st_mode)
        except OSError:
            pass
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    except OSError as e:
        raise XmpError(f"{sidecar}: cannot create a temp file in {folder}: {e.strerror}", path=sidecar) from None
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if expected is not None:
                # The umask may have narrowed the mode at creation; match the old sidecar.
                os.chmod(tmp, mode)
            if _signature(sidecar) != expected:
                os.unlink(tmp)
                return False
            os.replace(tmp, sidecar)
        except OSError as e:
            raise XmpError(f"{sidecar}: cannot write: {e.strerror}", path=sidecar) from None
    finally:
        if tmp.exists():
            try:
                os.unlink(tmp)
            except OSError:
                pass
    shared = getattr(_shared_syncs, "folders", None)
    if shared is None:
        _fsync_dir(folder)
    else:
        shared.add(folder)
    return True


_shared_syncs = threading.local()


@contextlib.contextmanager
def folder_syncs_shared() -> Iterator[None]:
    """Sidecars written inside (on this thread) have their folders fsynced once each, on the
    way out, rather than once per sidecar: for a batch of photos filed into one star folder.
    Each sidecar's own bytes are still fsynced before its rename."""
    folders: set[Path] = set()
    _shared_syncs.folders = folders
    try:
        yield
    finally:
        _shared_syncs.folders = None
        for folder in sorted(folders):
            _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
