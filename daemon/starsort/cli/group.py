"""The `starsort` command group and what its verbs share. Only the `cli` package turns
exceptions into messages and exit codes; each verb has a module of its own."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .. import __version__
from .. import config as config_mod

CONFIG_HELP = "Config file (default: $XDG_CONFIG_HOME/starsort/config.yaml)."


def load(path: Path | None) -> tuple[config_mod.Config, Path | None]:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as e:
        for line in e.problems:
            click.echo(f"{e.source}: {line}", err=True)
        sys.exit(2)


def open_readonly(cfg: config_mod.Config):
    from .. import paths
    from ..store.db import connect
    if not Path(cfg.database).exists():
        tried = paths.database_candidates(cfg.database, config_mod.database_explicit(cfg))
        click.echo(f"no database yet: starsort has not run with this config (tried {', '.join(map(str, tried))})",
                   err=True)
        sys.exit(1)
    return connect(cfg.database, readonly=True)


class OneLineFormatter(logging.Formatter):
    """One log record, one line: control characters in messages (a file name
    with a newline) are escaped. Tracebacks, added after this, keep theirs."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from ..analysis.filetype import printable
        return printable(super().formatMessage(record))


@click.group()
@click.version_option(__version__, prog_name="starsort")
def cli() -> None:
    """Watch camera-import folders, rate each photo 1-5 stars by face sharpness,
    and file it into a star folder.

    \b
    starsort run              run the service in the foreground
    starsort status           what the service is doing
    starsort report -f csv    one row per photo
    starsort sort FOLDER      sort a folder once, without the service
    starsort undo --all       put filed photos back where they came from
    starsort duplicates       groups of duplicate photos in the library
    starsort config example   a documented config file
    """


def refuse_if_running(cfg: config_mod.Config, what: str) -> None:
    from ..store import queries as report
    if not Path(cfg.database).exists():
        return
    s = report.status(open_readonly(cfg))
    if s["running"]:
        click.echo(f"the starsort service is running (pid {s['pid']}) on {cfg.database}; stop it before "
                   f"`starsort {what}`", err=True)
        sys.exit(1)
