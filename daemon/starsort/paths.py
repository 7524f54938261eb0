"""Where things live by default: XDG base directories, and systemd's own.

systemd sets $STATE_DIRECTORY for a unit with StateDirectory=, so a service
keeps its database where the unit says without any config (borgmatic paths.py).
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


def default_config_file() -> Path:
    return config_home() / "starsort" / "config.yaml"


def default_inbox() -> Path:
    return Path.home() / "Pictures" / "starsort" / "inbox"


def default_library() -> Path:
    return Path.home() / "Pictures" / "starsort" / "library"


def default_database() -> Path:
    state_dir = os.environ.get("STATE_DIRECTORY")
    if state_dir:
        # systemd may pass several, colon-separated; the first is ours.
        return Path(state_dir.split(":")[0]) / "starsort.db"
    return state_home() / "starsort" / "starsort.db"


def expand(p: Path | str) -> Path:
    """Expand ~ and $VARS; an unset $XDG_STATE_HOME expands to its XDG default."""
    s = str(p)
    env = dict(os.environ)
    env.setdefault("XDG_STATE_HOME", str(state_home()))
    env.setdefault("XDG_CONFIG_HOME", str(config_home()))
    for k, v in env.items():
        s = s.replace("${" + k + "}", v)
    import re
    s = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", lambda m: env.get(m.group(1), m.group(0)), s)
    return Path(os.path.abspath(os.path.expanduser(s)))
