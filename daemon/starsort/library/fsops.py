"""Filesystem steps that never lose an original: place, verified copy, fsync.

* Never overwrite. A destination name is claimed with `os.link` or an
  O_EXCL create, both of which fail if the name exists; `shutil.move` and
  `os.rename` silently replace (CPython gh-109503), so neither touches a
  final name here.
* Same filesystem: `link(src, dst)`, fsync the folder, and only then may the
  source go. Across filesystems (or where hard links are not supported,
  e.g. exFAT): copy to a temp name in the destination folder, fsync, re-read
  and compare SHA-256, link into place.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path

from .. import crashpoints
from .names import temp_path

_CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Collision(Exception):
    """The destination name was taken between planning and placing."""


class SourceChanged(Exception):
    """The source changed while it was being copied; it is kept, and queued again."""


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


def place(src: str, dst: str, copy: bool, sync_folder: bool = True) -> str | None:
    """Make dst hold src's bytes without overwriting anything. Returns the SHA-256 if it copied.

    `sync_folder=False`: a link's folder is left for the caller to fsync, once for every
    photo it files there, before anything relies on the link (see `Filer.file_many`).
    """
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
            if sync_folder:
                fsync_dir(folder)
                crashpoints.hit("fsync_dir")
            return None
        except FileExistsError:
            raise Collision(dst) from None
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
    return _copy_verified(src, dst)


def holds_source(src: str, dst: str, sha: str | None) -> bool:
    """True when dst provably holds src's bytes (same inode, or same size and hash)."""
    try:
        if os.path.samefile(src, dst):
            return True
        if os.path.getsize(src) != os.path.getsize(dst):
            return False
    except FileNotFoundError:
        return False
    return sha256_file(dst) == (sha or sha256_file(src))


