"""Filing: move (or copy) a photo's files into a star folder without ever losing one.

The invariant (reliability.md): at every instant, even after `kill -9`, each
original's bytes exist in full in at least one known place. So:

* Never overwrite. A destination name is claimed with `os.link` or an
  O_EXCL create, both of which fail if the name exists; `shutil.move` and
  `os.rename` silently replace (CPython gh-109503), so neither touches a
  final name here.
* Same filesystem: `link(src, dst)`, fsync the folder, and only then unlink
  the source. Across filesystems (or where hard links are not supported,
  e.g. exFAT): copy to a temp name in the destination folder, fsync, re-read
  and compare SHA-256, link into place, then unlink the source.
* A group (RAW + JPEG + sidecars) is placed whole before any source is
  unlinked, so a crash can never split it between inbox and library.
* Every step is journalled in `moves` before and after. `complete()` drives
  journal rows forward by looking at the disk, which makes filing and crash
  recovery the same code path.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from . import crashpoints
from .db import transaction

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
TEMP_PREFIX = ".starsort-"
_CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def temp_path(folder: str | Path) -> str:
    """A fresh temp name in `folder`: ignored by the scan, swept from the library at start-up."""
    return os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}.tmp")


def star_folder(stars: int) -> str:
    return "1-star" if stars == 1 else f"{stars}-stars"


class Collision(Exception):
    """The destination name was taken between planning and placing."""


class SourceChanged(Exception):
    """The source changed while it was being copied; it is kept, and queued again."""


@dataclass
class Member:
    role: str        # primary | pair | sidecar
    src: str


def photo_stem(path: str) -> str:
    """DSC00001 for DSC00001.ARW, and for its sidecars DSC00001.xmp and DSC00001.ARW.xmp."""
    name = os.path.basename(path)
    return name.split(".", 1)[0] if name.lower().endswith(".xmp") else os.path.splitext(name)[0]


def find_sidecars(photo_paths: list[str]) -> list[str]:
    """XMP sidecars next to the photo: IMG.xmp (Adobe) and IMG.EXT.xmp (darktable), any case."""
    if not photo_paths:
        return []
    folder = os.path.dirname(photo_paths[0])
    stem = photo_stem(photo_paths[0]).casefold()
    names = {os.path.basename(p).casefold() for p in photo_paths}
    wanted = {f"{stem}.xmp"} | {f"{n}.xmp" for n in names}
    found = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.casefold() in wanted and e.is_file(follow_symlinks=False):
                    found.append(e.path)
    except FileNotFoundError:
        pass
    return sorted(found)


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


def plan(dest_dir: Path, members: list[Member], reserved: set[str]) -> dict[str, str]:
    """Pick one stem for the whole group that no member collides with: IMG, IMG_2, IMG_3 ..."""
    old_stem = photo_stem(members[0].src)
    longest_rest = max(len(dest_name(m, old_stem, "").encode("utf-8", "surrogateescape")) for m in members)
    for n in range(1, 100_000):
        stem = _fit_stem(old_stem, "" if n == 1 else f"_{n}", longest_rest)
        dsts = {m.src: str(dest_dir / dest_name(m, old_stem, stem)) for m in members}
        if len(set(dsts.values())) != len(dsts):
            continue
        if not any(os.path.lexists(d) or d in reserved for d in dsts.values()):
            return dsts
    raise RuntimeError(f"no free name for {old_stem} in {dest_dir}")


# ---- filesystem primitives ---------------------------------------------------

def fsync_dir(path: str | Path) -> None:
    fd = os.open(str(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_verified(src: str, dst: str) -> str:
    """Copy src to dst through a temp file in dst's folder; return the verified SHA-256."""
    folder = os.path.dirname(dst)
    tmp = temp_path(folder)
    before = os.stat(src)
    h = hashlib.sha256()
    src_fd = os.open(src, os.O_RDONLY | _NOFOLLOW)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    except OSError:
        os.close(src_fd)
        raise
    try:
        with os.fdopen(src_fd, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                fout.write(chunk)
                crashpoints.hit("write")
            fout.flush()
            os.fsync(fout.fileno())
            crashpoints.hit("fsync_file")
        shutil.copystat(src, tmp)
        after = os.stat(src)
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise SourceChanged(f"{src} changed while it was being copied")
        digest = h.hexdigest()
        if sha256_file(tmp) != digest:
            raise OSError(errno.EIO, f"copy of {src} does not read back identical")
        crashpoints.hit("verify")
        try:
            os.link(tmp, dst)
        except FileExistsError:
            raise Collision(dst) from None
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # No hard links here (exFAT, some SMB/FUSE): a no-clobber rename is
            # not in the stdlib, so check-then-rename; git makes the same
            # trade on such filesystems.
            if os.path.lexists(dst):
                raise Collision(dst) from None
            os.rename(tmp, dst)
        crashpoints.hit("link_tmp")
        fsync_dir(folder)
        crashpoints.hit("fsync_dir")
        return digest
    finally:
        try:
            os.unlink(tmp)
            crashpoints.hit("unlink_tmp")
        except FileNotFoundError:
            pass


def place(src: str, dst: str, copy: bool) -> str | None:
    """Make dst hold src's bytes without overwriting anything. Returns the SHA-256 if it copied."""
    folder = os.path.dirname(dst)
    if not stat.S_ISREG(os.lstat(src).st_mode):
        # Swapped for a symlink (or a FIFO) since it was analysed: filing it
        # would pull whatever it points at into the library.
        raise SourceChanged(f"{src} is no longer a regular file")
    os.makedirs(folder, exist_ok=True)
    if not copy:
        try:
            os.link(src, dst, follow_symlinks=False)
            crashpoints.hit("link")
            fsync_dir(folder)
            crashpoints.hit("fsync_dir")
            return None
        except FileExistsError:
            raise Collision(dst) from None
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
    return _copy_verified(src, dst)


def _holds_source(src: str, dst: str, sha: str | None) -> bool:
    """True when dst provably holds src's bytes (same inode, or same size and hash)."""
    try:
        if os.path.samefile(src, dst):
            return True
        if os.path.getsize(src) != os.path.getsize(dst):
            return False
    except FileNotFoundError:
        return False
    return sha256_file(dst) == (sha or sha256_file(src))


# ---- the journal ---------------------------------------------------------------

class Filer:
    """Files photos through the journal. `call` runs a function on the DB writer."""

    def __init__(self, call, library: Path):
        self.call = call
        self.library = Path(library)

    def file(self, photo_id: int, members: list[Member], dest_dir: Path, copy: bool) -> dict[str, str]:
        """Place every member in dest_dir under one stem; return {role-or-src: dst}."""
        for _ in range(50):
            reserved = set(self.call(lambda db: [r[0] for r in db.execute(
                "SELECT dst FROM moves WHERE state != 'done' AND dst LIKE ?", (str(dest_dir) + os.sep + "%",))]))
            dsts = plan(dest_dir, members, reserved)
            now = time.time()

            def journal(db: Database) -> None:
                with transaction(db):
                    for m in members:
                        db.execute(
                            "INSERT INTO moves (photo_id, role, src, dst, copy, state, created_at, updated_at)"
                            " VALUES (?, ?, ?, ?, ?, 'planned', ?, ?)",
                            (photo_id, m.role, m.src, dsts[m.src], int(copy), now, now))
                    db.execute("UPDATE photos SET state = 'filing', updated_at = ? WHERE id = ?", (now, photo_id))
            self.call(journal)
            try:
                return self.complete(photo_id)
            except Collision as c:
                log.info("name %s was taken while filing; choosing another", c)
                self.unplan(photo_id)
        raise RuntimeError(f"could not find a free name for photo {photo_id}")

    def committed(self, photo_id: int) -> bool:
        """True once a source of the group's unfinished filing has left the inbox.

        From then on the filing can only be finished, never taken back: taking
        it back would leave the moved member in the library with no journal row
        and file the rest of the group without it.
        """
        rows = self.call(lambda db: list(db.query(
            "SELECT * FROM moves WHERE photo_id = ? ORDER BY id", [photo_id])))
        pending = [r["id"] for r in rows if r["state"] != "done"]
        if not pending:
            return False
        # Rows of one filing are journalled together, after any earlier ones.
        attempt = [r for r in rows if r["id"] >= min(pending)]
        return any(r["state"] == "done" or (not r["copy"] and r["state"] == "placed" and not os.path.exists(r["src"]))
                   for r in attempt)

    def unplan(self, photo_id: int) -> None:
        """Take back a group's placements that are provably ours; sources are all still there."""
        rows = self.call(lambda db: list(db.query(
            "SELECT * FROM moves WHERE photo_id = ? AND state != 'done'", [photo_id])))
        for r in rows:
            # 'planned' too: a step after the link can fail (fsync of the folder
            # with EIO) and leave the name placed before the journal says so.
            # Left there, the retry would file the photo a second time as _2.
            if (os.path.lexists(r["dst"]) and os.path.exists(r["src"])
                    and _holds_source(r["src"], r["dst"], r["sha256"])):
                os.unlink(r["dst"])
        self.call(lambda db: db.execute(
            "DELETE FROM moves WHERE photo_id = ? AND state != 'done'", (photo_id,)))

    def complete(self, photo_id: int) -> dict[str, str]:
        """Drive this photo's journal rows to done, trusting the disk over the journal."""
        rows = self.call(lambda db: list(db.query(
            "SELECT * FROM moves WHERE photo_id = ? ORDER BY id", [photo_id])))
        for r in rows:
            if r["state"] != "planned":
                continue
            src, dst = r["src"], r["dst"]
            sha = None
            if os.path.lexists(dst):
                if not os.path.exists(src) or not _holds_source(src, dst, None):
                    if not os.path.exists(src):
                        # Planned, never placed, and the source is gone: the user
                        # removed it. Nothing of ours to finish.
                        self._set(r["id"], "done")
                        log.warning("source %s vanished before it was filed", src)
                        continue
                    raise Collision(dst)
            elif not os.path.exists(src):
                self._set(r["id"], "done")
                log.warning("source %s vanished before it was filed", src)
                continue
            else:
                sha = place(src, dst, bool(r["copy"]))
            self._set(r["id"], "placed", sha)
            r["state"], r["sha256"] = "placed", sha
        # Every member is placed: only now may sources go.
        for r in rows:
            if r["state"] != "placed":
                continue
            if not r["copy"] and os.path.exists(r["src"]):
                if not _holds_source(r["src"], r["dst"], r["sha256"]):
                    raise SourceChanged(f"{r['src']} no longer matches its filed copy {r['dst']}")
                src_dir = os.path.dirname(r["src"])
                os.unlink(r["src"])
                crashpoints.hit("unlink_src")
                fsync_dir(src_dir)
                crashpoints.hit("fsync_src_dir")
            self._set(r["id"], "done")
        return {r["role"] if r["role"] != "sidecar" else r["src"]: r["dst"] for r in rows}

    def _set(self, move_id: int, state: str, sha: str | None = None) -> None:
        now = time.time()
        self.call(lambda db: db.execute(
            "UPDATE moves SET state = ?, sha256 = COALESCE(?, sha256), updated_at = ? WHERE id = ?",
            (state, sha, now, move_id)))

    def unfinished(self) -> list[int]:
        return self.call(lambda db: [r[0] for r in db.execute(
            "SELECT DISTINCT photo_id FROM moves WHERE state != 'done' ORDER BY photo_id")])

    def sweep_temp_files(self) -> int:
        """Remove temp files a crash left in the library; their sources are still intact."""
        n = 0
        if not self.library.exists():
            return 0
        for folder, _dirs, files in os.walk(self.library):
            for name in files:
                if name.startswith(TEMP_PREFIX) and name.endswith(".tmp"):
                    os.unlink(os.path.join(folder, name))
                    n += 1
        if n:
            log.info("removed %d leftover temp file(s) from the library", n)
        return n
