"""Intake paused: a switch the photographer throws while swapping cards.

While paused, new files are still seen and recorded (the watcher and the
rescans keep writing the `inbox` table), so nothing that lands is missed;
but nothing is analysed, filed or moved until intake resumes. Photos
already inside an analysis worker when the switch is thrown (at most one
per worker) are finished and filed, as on a stop.

The switch is a small file next to the database, not a row in it: every
process may throw it (`starsort pause`, the tray through the review page,
the page itself), with or without a running service, and none of them
becomes a second SQLite writer. The service looks at it on every turn of
its loop; it survives a restart because it is a file.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

FILE = "paused"


def path(database: Path | str) -> Path:
    return Path(database).parent / FILE


def state(database: Path | str) -> dict[str, Any] | None:
    """{"at", "by"} while intake is paused, else None."""
    p = path(database)
    try:
        text = p.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        # Unreadable but there: still paused, the safer reading.
        return {"at": None, "by": "unknown"}
    try:
        data = json.loads(text)
        return {"at": data.get("at"), "by": data.get("by", "unknown")}
    except (ValueError, AttributeError):
        return {"at": None, "by": "unknown"}


def pause(database: Path | str, by: str) -> bool:
    """Pause intake; False if it already was."""
    p = path(database)
    if p.exists():
        return False
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{FILE}.{os.getpid()}")
    tmp.write_text(json.dumps({"at": time.time(), "by": by}) + "\n")
    os.replace(tmp, p)
    return True


def resume(database: Path | str) -> bool:
    """Resume intake; False if it was not paused."""
    try:
        path(database).unlink()
    except FileNotFoundError:
        return False
    return True
