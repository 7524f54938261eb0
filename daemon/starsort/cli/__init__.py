"""The `starsort` command line: the group in `group`, one module per verb."""
from .group import cli
from . import config, duplicates, pause, people, report, rerate, review, run, sort, status, tray, undo  # noqa: F401,E402 - each registers its verb

__all__ = ["cli"]
