"""Settings the photographer changed from the review page, in force over config.yaml.

The page's threshold what-if can be applied: the photos are re-rated at the
new threshold, and new photos must be rated at it too, or the library would
mix two thresholds. The service cannot write config.yaml (under systemd it
is read-only to it, and rewriting a hand-edited YAML file loses its
comments), so the value is kept here. It stays in force only while
config.yaml still says what it said when the value was set: editing the file
later is a newer decision, and the file wins.

Only the keys in SETTABLE can be set this way; `starsort status` and the
page say which value is in force and where it comes from.
"""
from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from ..config import Config

SETTABLE = ("blur.threshold",)


def _get(cfg: Config, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _with(cfg: Config, key: str, value: Any) -> Config:
    section, name = key.split(".")
    sub = getattr(cfg, section)
    new_sub = type(sub).model_validate({**sub.model_dump(), name: value})
    out = cfg.model_copy(update={section: new_sub})
    out.__pydantic_fields_set__ = set(cfg.model_fields_set)
    return out


def put(db: Database, cfg_file: Config, key: str, value: Any, now: float) -> None:
    """Set `key` over config.yaml's value (`cfg_file`, the config as the file says it)."""
    assert key in SETTABLE, key
    _with(cfg_file, key, value)       # refuses a value the schema refuses
    db.execute("INSERT INTO settings (key, value, config_value, set_at) VALUES (?, ?, ?, ?)"
               " ON CONFLICT(key) DO UPDATE SET value = excluded.value, config_value = excluded.config_value,"
               " set_at = excluded.set_at",
               (key, json.dumps(value), json.dumps(_get(cfg_file, key)), now))


def in_force(db: Database, cfg_file: Config) -> tuple[Config, dict[str, dict]]:
    """The config in force: config.yaml with the settings still standing, and those
    settings as {key: {"value", "config_value", "set_at"}} for status and the page."""
    cfg, standing = cfg_file, {}
    if "settings" not in db.table_names():
        return cfg, standing
    for key, value, config_value, set_at in db.execute("SELECT key, value, config_value, set_at FROM settings"):
        if key not in SETTABLE or json.loads(config_value) != _get(cfg_file, key):
            continue                  # config.yaml was edited since: the file's value is newer
        try:
            cfg = _with(cfg, key, json.loads(value))
        except ValueError:
            continue
        standing[key] = {"value": json.loads(value), "config_value": json.loads(config_value), "set_at": set_at}
    return cfg, standing
