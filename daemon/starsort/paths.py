"""Where things live by default: the XDG base directories.

The service and the CLI must always open the same database, so the default
is computed from what a login shell and a user service both have ($HOME
and the XDG variables), never from variables only one of them sees: systemd
sets $STATE_DIRECTORY for the service alone, and before version 254 it
pointed at ~/.config/starsort, where a shell's `starsort status` would never
look. A database already there (from such a service) is still found.
"""
from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def config_home() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def state_home() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state")


def cache_home() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache")


def default_previews() -> Path:
    return cache_home() / "starsort" / "previews"


def preview_file(root: Path, key: str, size: str) -> Path:
    """Where the preview of `size` (s, l or full) with this key lies: the analysis workers
    write it, the review page serves it; 256 subfolders keep each folder small."""
    return Path(root) / key[:2] / f"{key}-{size}.jpg"


def default_config_file() -> Path:
    return config_home() / "starsort" / "config.yaml"


def default_inbox() -> Path:
    return Path.home() / "Pictures" / "starsort" / "inbox"


def default_library() -> Path:
    return Path.home() / "Pictures" / "starsort" / "library"


def default_database() -> Path:
    return state_home() / "starsort" / "starsort.db"


def legacy_databases() -> list[Path]:
    """Where earlier setups kept the default database: systemd < 254's StateDirectory of a user unit."""
    return [config_home() / "starsort" / "starsort.db"]


def database_candidates(configured: Path, explicit: bool) -> list[Path]:
    """The places the database may be, in the order they are tried."""
    if explicit:
        return [configured]
    return [configured, *[p for p in legacy_databases() if p != configured]]


def find_database(configured: Path, explicit: bool) -> Path:
    """The first candidate that exists, else the configured path (where a new one is made)."""
    return next((p for p in database_candidates(configured, explicit) if p.exists()), configured)


def expand(p: Path | str) -> Path:
    """Expand ~ and $VARS; an unset $XDG_STATE_HOME expands to its XDG default."""
    s = str(p)
    env = dict(os.environ)
    env.setdefault("XDG_STATE_HOME", str(state_home()))
    env.setdefault("XDG_CONFIG_HOME", str(config_home()))
    env.setdefault("XDG_CACHE_HOME", str(cache_home()))
    for k, v in env.items():
        s = s.replace("${" + k + "}", v)
    import re
    s = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", lambda m: env.get(m.group(1), m.group(0)), s)
    return Path(os.path.abspath(os.path.expanduser(s)))


# Where removable disks, cards and network shares are mounted.
MOUNT_ROOTS = (Path("/media"), Path("/run/media"), Path("/mnt"), Path("/Volumes"))


def below_absent_mount(p: Path) -> bool:
    """True when `p` is missing from just below a mount root (/media/you/NAS/... with no
    NAS there): an unmounted disk, where creating folders would put files on the wrong one."""
    p = Path(os.path.abspath(p))
    missing = p
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    if missing.exists():
        return False
    at = missing.parent                      # the deepest folder that exists
    return any(at == root or at.parent == root for root in MOUNT_ROOTS)
