"""The one checker every fault test ends with: the oracle of "nothing lost, nothing damaged".

    originals = Originals.snapshot(paths)     # before the daemon sees them
    originals.add(path)                       # files that arrive later
    check(originals, inbox, library, db_path, proc=daemon, stopped=False)

`check` walks the disk rather than asking the daemon, because the daemon's
own view is what is under test. It collects every problem before raising, so
one failing run shows the whole damage, not the first symptom.

What it asserts:
* every original's bytes exist exactly once: in the library (a star folder
  or quarantine) or, if not yet filed, at its own path in the inbox; never
  zero times, never twice (mode="copy": once in the inbox *and* at most once
  in the library; mode="rate-in-place": in the inbox, with the ratings of
  its sidecars merged where they lie);
* every file in the library is byte-identical to some original: no temp
  files, no truncated or half-written finals, nothing unknown;
* a RAW, its same-stem JPEG and its sidecars stay together: the same
  folder, the same (possibly suffixed) stem, or all still in the inbox;
* an original XMP sidecar is present exactly once with its group. Its bytes
  may differ, because starsort merges the rating into it; the sidecars
  starsort creates itself are not originals and are not counted;
* the database says `ok` to `PRAGMA integrity_check`, and every photo it
  calls done or quarantined is where it says;
* the daemon process is alive, or exited 0 when `stopped=True`.
"""
from __future__ import annotations

import os
import time
import sqlite3
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..helpers import sha256 as sha256_of

RAW_EXTS = {".arw", ".nef", ".cr2", ".cr3", ".crw", ".dng", ".raf", ".orf", ".rw2", ".pef", ".srw", ".kdc",
            ".mrw", ".3fr", ".erf", ".x3f", ".nrw", ".sr2", ".srf", ".rwl", ".iiq", ".mos", ".dcr"}
JPEG_EXTS = {".jpg", ".jpeg", ".jpe"}
TEMP_PREFIX = ".starsort-"


def _stem(name: str) -> str:
    # As filing.photo_stem: DSC1 for DSC1.ARW, and for DSC1.xmp and DSC1.ARW.xmp.
    return name.split(".", 1)[0] if name.lower().endswith(".xmp") else os.path.splitext(name)[0]


def _kind(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    if ext == ".xmp":
        return "sidecar"
    if ext in RAW_EXTS:
        return "raw"
    if ext in JPEG_EXTS:
        return "jpeg"
    return "other"


@dataclass
class Original:
    path: str          # where it was put in the inbox
    sha256: str
    size: int
    group: str | None = None   # group key, when it belongs to a RAW/JPEG/sidecar group

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def is_sidecar(self) -> bool:
        return _kind(self.name) == "sidecar"


@dataclass
class Originals:
    files: dict[str, Original] = field(default_factory=dict)

    @classmethod
    def snapshot(cls, paths: Iterable[str | Path]) -> "Originals":
        o = cls()
        for p in paths:
            o._put(str(p))
        o._regroup()
        return o

    def add(self, path: str | Path) -> None:
        self._put(str(path))
        self._regroup()

    def add_many(self, paths: Iterable[str | Path]) -> None:
        for p in paths:
            self._put(str(p))
        self._regroup()

    def discard(self, path: str | Path) -> None:
        """The user deleted this file: it is no longer expected anywhere."""
        self.files.pop(str(path), None)
        self._regroup()

    def rename_folder(self, old: str | Path, new: str | Path) -> None:
        """The user renamed a folder of the inbox: its originals are expected under the new name."""
        old, new = str(old).rstrip(os.sep) + os.sep, str(new).rstrip(os.sep) + os.sep
        moved = {}
        for p, o in list(self.files.items()):
            if p.startswith(old):
                del self.files[p]
                o.path = new + p[len(old):]
                moved[o.path] = o
        self.files.update(moved)
        self._regroup()

    def _put(self, path: str) -> None:
        st = os.stat(path)
        self.files[path] = Original(path, sha256_of(path), st.st_size)

    def _regroup(self) -> None:
        """Same folder + case-folded stem: a group when it holds at most one raw and at most
        one JPEG (settle.py pairs exactly one of each) and at least two members."""
        by_key: dict[tuple[str, str], list[Original]] = defaultdict(list)
        for o in self.files.values():
            by_key[(os.path.dirname(o.path), _stem(o.name).casefold())].append(o)
        for (folder, stem), members in by_key.items():
            kinds = [_kind(m.name) for m in members]
            photos = [k for k in kinds if k in ("raw", "jpeg")]
            grouped = (len(members) >= 2 and kinds.count("raw") <= 1 and kinds.count("jpeg") <= 1
                       and len(photos) >= 1 and kinds.count("other") == 0)
            for m in members:
                m.group = f"{folder}/{stem}" if grouped else None

    def __len__(self) -> int:
        return len(self.files)

    def groups(self) -> dict[str, list[Original]]:
        out: dict[str, list[Original]] = defaultdict(list)
        for o in self.files.values():
            if o.group:
                out[o.group].append(o)
        return out


def _regular_files(root: Path) -> list[str]:
    out = []
    for folder, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(folder, n)
            try:
                if os.path.isfile(p) and not os.path.islink(p):
                    out.append(p)
            except OSError:
                continue
    return out


class _Hashes:
    """Hash a file only if its size could match an original's: large runs stay cheap."""

    def __init__(self, sizes: set[int]):
        self.sizes = sizes
        self.cache: dict[str, str | None] = {}

    def of(self, path: str) -> str | None:
        if path not in self.cache:
            try:
                size = os.path.getsize(path)
                self.cache[path] = sha256_of(path) if size in self.sizes else None
            except OSError:
                self.cache[path] = None
        return self.cache[path]


def _is_under(path: str, root: Path) -> bool:
    r = os.path.realpath(root)
    return os.path.realpath(path).startswith(r.rstrip(os.sep) + os.sep)


def _in_flight(path: str, proc) -> bool:
    """A live daemon's temp file that is gone a moment later was a write in progress
    (a sidecar is written just after its photo is marked done), not a leftover."""
    if proc is None or proc.poll() is not None:
        return False
    for _ in range(20):
        time.sleep(0.1)
        if not os.path.lexists(path):
            return True
    return False


def check(originals: Originals, inbox: Path | str, library: Path | str, db_path: Path | str,
          proc: subprocess.Popen | None = None, stopped: bool = False, *,
          mode: str = "move", drained: bool = False, allow_temp: bool = False, crashed: bool = False,
          extra_inboxes: Iterable[Path | str] = ()) -> dict:
    """Assert the invariants; raise AssertionError listing every problem. Returns counts.

    drained=True also requires every original that starsort takes (not hidden,
    not a temp name) to have left the inbox for the library (move mode) and
    the journal to be empty of unfinished moves.
    allow_temp=True tolerates starsort temp files (a live daemon mid-copy).
    crashed=True checks the state a crash left, before recovery: no original
    may be missing and no final may be partial, but a move in progress may
    hold an original twice (inbox + library) and a group may be half placed.
    """
    allow_temp = allow_temp or crashed
    inbox, library = Path(inbox), Path(library)
    inboxes = [inbox, *(Path(p) for p in extra_inboxes)]
    problems: list[str] = []
    hashes = _Hashes({o.size for o in originals.files.values()})

    lib_files = _regular_files(library) if library.exists() else []
    inbox_files = [p for ib in inboxes if ib.exists() for p in _regular_files(ib) if not _is_under(p, library)]

    # ---- the library holds nothing but originals' bytes ----------------------
    lib_by_sha: dict[str, list[str]] = defaultdict(list)
    xmp_in_library: set[str] = set()
    for p in lib_files:
        name = os.path.basename(p)
        if name.startswith(TEMP_PREFIX):
            if not allow_temp and not _in_flight(p, proc):
                problems.append(f"temp file left in the library: {p}")
            continue
        if name.lower().endswith(".xmp"):
            # Either an original sidecar (matched by name below, its rating
            # merged in) or one starsort wrote itself; neither is byte-counted.
            xmp_in_library.add(p)
            h = hashes.of(p)
            if h:
                lib_by_sha[h].append(p)
            continue
        h = hashes.of(p)
        if h is None and not os.path.lexists(p) and (allow_temp or proc is not None):
            # Gone between the listing and the read: a live daemon took back a
            # placement whose folder fsync failed (its source never left the
            # inbox, which the checks below still require). A hard link is
            # never partial, so there was nothing to see but a complete file.
            continue
        if h is None or not any(o.sha256 == h for o in _by_sha(originals).get(h, [])):
            size = os.path.getsize(p) if os.path.exists(p) else -1
            problems.append(f"library file matches no original (partial, corrupted or unknown): {p} ({size} bytes)")
            continue
        lib_by_sha[h].append(p)
    for p in _symlinks(library):
        problems.append(f"symlink in the library: {p}")

    inbox_by_sha: dict[str, list[str]] = defaultdict(list)
    for p in inbox_files:
        h = hashes.of(p)
        if h:
            inbox_by_sha[h].append(p)

    # ---- every original exactly once ----------------------------------------
    by_sha = _by_sha(originals)
    where: dict[str, str] = {}      # original path -> where its bytes are now
    in_inbox = in_library = 0
    for h, group in by_sha.items():
        photos = [o for o in group if not o.is_sidecar]
        if not photos:
            continue  # sidecars only: matched by name below
        n = len(photos)
        lib = [p for p in lib_by_sha.get(h, []) if not p.lower().endswith(".xmp")]
        inb = [p for p in inbox_by_sha.get(h, [])]
        if mode == "copy":
            if len(inb) != n:
                problems.append(f"copy mode: {n} original(s) with sha {h[:12]} ({_names(photos)}) "
                                f"but {len(inb)} in the inbox: {inb}")
            if len(lib) > n:
                problems.append(f"filed twice: {_names(photos)} -> {lib}")
            if drained and len(lib) < n and not all(_ignored_by_starsort(o.path, inboxes) for o in photos):
                problems.append(f"copy mode: not filed after a clean run: {_names(photos)}")
            found = len(lib) + len(inb)
        else:
            found = len(lib) + len(inb)
            if found == 0:
                problems.append(f"LOST: {_names(photos)} (sha {h[:12]}, {photos[0].size} bytes) is nowhere")
            elif found < n:
                problems.append(f"LOST: {n} original(s) {_names(photos)} but only {found} cop(ies): {lib + inb}")
            elif found > n and not crashed:
                problems.append(f"DUPLICATED: {_names(photos)} exists {found} times, expected {n}: {lib + inb}")
        # Pair originals with locations: an original still at its own path stays there.
        remaining_lib = list(lib)
        for o in photos:
            if mode == "copy" and remaining_lib:
                where[o.path] = remaining_lib.pop(0)     # its filed copy is what groups are judged by
                in_library += 1
            elif o.path in inb:
                where[o.path] = o.path
                in_inbox += 1
            elif remaining_lib:
                where[o.path] = remaining_lib.pop(0)
                in_library += 1
            elif inb:
                where[o.path] = inb[0]     # same bytes elsewhere in the inbox (a renamed folder)
                in_inbox += 1
        if drained and mode == "move":
            for p in inb:
                if not _ignored_by_starsort(p, inboxes):
                    problems.append(f"not filed after a clean run: {p}")

    # ---- groups stay together -------------------------------------------------
    for key, members in (originals.groups().items() if not crashed else ()):
        photos = [m for m in members if not m.is_sidecar]
        sidecars = [m for m in members if m.is_sidecar]
        places = {m.path: where.get(m.path) for m in photos}
        if any(v is None for v in places.values()):
            continue  # already reported as lost
        lib_places = {k: v for k, v in places.items() if _is_under(v, library)}
        if lib_places and len(lib_places) != len(places) and mode == "move":
            problems.append(f"SPLIT group {key}: " + ", ".join(f"{os.path.basename(k)} -> {v}"
                                                               for k, v in places.items()))
            continue
        if lib_places:
            folders = {os.path.dirname(v) for v in lib_places.values()}
            stems = {_stem(os.path.basename(v)) for v in lib_places.values()}
            if len(folders) != 1 or len(stems) != 1:
                problems.append(f"group {key} not together: " + ", ".join(sorted(lib_places.values())))
                continue
            folder, new_stem = folders.pop(), stems.pop()
            old_stem = _stem(photos[0].name)
            for s in sidecars:
                expect = os.path.join(folder, new_stem + s.name[len(old_stem):])
                if not os.path.isfile(expect):
                    alt = [p for p in xmp_in_library if os.path.basename(p).casefold()
                           == os.path.basename(expect).casefold() and os.path.dirname(p) == folder]
                    if not alt:
                        problems.append(f"sidecar {s.path} of group {key} missing: expected {expect}")
                if os.path.exists(s.path) and mode != "copy":
                    problems.append(f"sidecar {s.path} still in the inbox though its group was filed to {folder}")
                copies = [p for p in lib_by_sha.get(s.sha256, []) if os.path.dirname(p) != folder]
                if copies:
                    problems.append(f"sidecar {s.name} also elsewhere: {copies}")
        else:
            for s in sidecars:
                if mode == "rate-in-place" and os.path.isfile(s.path):
                    continue   # the rating is merged into it where it lies
                if not os.path.isfile(s.path) or sha256_of(s.path) != s.sha256:
                    problems.append(f"sidecar {s.path} of unfiled group {key} is gone or changed")
                if s.sha256 in lib_by_sha:
                    problems.append(f"sidecar {s.path} of unfiled group {key} also in the library: "
                                    f"{lib_by_sha[s.sha256]}")

    if crashed:
        # Mid-move a sidecar is in the inbox, or placed (maybe renamed) in the library, or both.
        for o in originals.files.values():
            if not o.is_sidecar or os.path.isfile(o.path):
                continue
            rest = o.name[len(_stem(o.name)):]
            if not any(os.path.basename(p).startswith(_stem(o.name)) and p.endswith(rest) for p in xmp_in_library):
                problems.append(f"LOST sidecar: {o.path} is neither in the inbox nor in the library")

    # Sidecars with no photo of their own: byte-identical, exactly once.
    for o in (originals.files.values() if not crashed else ()):
        if o.is_sidecar and not o.group:
            found = list(lib_by_sha.get(o.sha256, [])) + [p for p in inbox_by_sha.get(o.sha256, [])]
            if len(found) != 1:
                # A lone sidecar that followed its filed photo has its rating merged in.
                followed = [p for p in xmp_in_library if os.path.basename(p) == o.name]
                if not (len(found) == 0 and followed):
                    problems.append(f"lone sidecar {o.path} found {len(found)} times: {found}")

    # ---- the database -----------------------------------------------------------
    db_counts = _check_db(Path(db_path), problems, drained, crashed)

    # ---- the daemon ------------------------------------------------------------
    if proc is not None:
        if stopped:
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                code = None
            if code != 0:
                problems.append(f"daemon did not exit cleanly: exit code {code}")
        elif proc.poll() is not None:
            problems.append(f"daemon is not running: exited with {proc.returncode}")

    summary = {"originals": len(originals), "in_library": in_library, "in_inbox": in_inbox,
               "library_files": len(lib_files), **db_counts}
    if problems:
        shown = problems[:200]
        more = f"\n... and {len(problems) - 200} more" if len(problems) > 200 else ""
        raise AssertionError(f"{len(problems)} problem(s) after the run ({summary}):\n  "
                             + "\n  ".join(shown) + more)
    return summary


def _by_sha(originals: Originals) -> dict[str, list[Original]]:
    cache = getattr(originals, "_by_sha_cache", None)
    if cache is None or cache[0] != len(originals.files):
        d: dict[str, list[Original]] = defaultdict(list)
        for o in originals.files.values():
            d[o.sha256].append(o)
        cache = (len(originals.files), d)
        object.__setattr__(originals, "_by_sha_cache", cache)
    return cache[1]


def _names(os_: list[Original]) -> str:
    return ", ".join(o.path for o in os_)


def _symlinks(root: Path) -> list[str]:
    out = []
    if not root.exists():
        return out
    for folder, dirs, names in os.walk(root):
        for n in names + dirs:
            p = os.path.join(folder, n)
            if os.path.islink(p):
                out.append(p)
    return out


def _ignored_by_starsort(path: str, inboxes: list[Path]) -> bool:
    try:
        from starsort.analysis import filetype
    except ImportError:
        return False
    root = next((ib for ib in inboxes if _is_under(path, ib)), inboxes[0])
    return filetype.is_ignored(path, root)


def _check_db(db_path: Path, problems: list[str], drained: bool, crashed: bool) -> dict:
    if not db_path.exists():
        if crashed:
            return {}   # killed before it was created
        problems.append(f"database {db_path} does not exist")
        return {}
    conn = sqlite3.connect(str(db_path), timeout=30)
    try:
        ic = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if ic != ["ok"]:
            problems.append(f"PRAGMA integrity_check: {ic[:10]}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "photos" not in tables:
            # Killed before the schema was created: nothing to be consistent with yet.
            if drained:
                problems.append("the database has no schema after a clean run")
            return {}
        counts = dict(conn.execute("SELECT state, count(*) FROM photos GROUP BY state").fetchall())
        for pid, state, cur, pair in conn.execute(
                "SELECT id, state, current_path, pair_path FROM photos WHERE state IN ('done', 'quarantined')"):
            for p in (cur, pair):
                if p and not os.path.isfile(p):
                    problems.append(f"photo {pid} is {state} at {p}, but no file is there")
        if drained:
            open_moves = conn.execute("SELECT count(*) FROM moves WHERE state != 'done'").fetchone()[0]
            if open_moves:
                problems.append(f"{open_moves} unfinished move(s) in the journal after a clean run")
            busy = counts.get("filing", 0)
            if busy:
                problems.append(f"{busy} photo(s) still 'filing' after a clean run")
        return {"db_" + k: v for k, v in counts.items()}
    except sqlite3.DatabaseError as e:
        problems.append(f"database unreadable: {e}")
        return {}
    finally:
        conn.close()
