"""`starsort undo`: put filed photos back where they came from."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load, refuse_if_running



@cli.command("undo")
@click.option("--since", help="Undo what was filed at or after this time: 2h, 30m, 1d, or 2026-11-22T14:00.")
@click.option("--all", "undo_all", is_flag=True, help="Undo everything in the journal.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def undo_cmd(since: str | None, undo_all: bool, config_path: Path | None) -> None:
    """Move filed photos back to where they came from, using the journal of moves.

    Nothing is overwritten: a photo whose old name is taken again stays in
    the library, and the reason is printed. Sidecars starsort created are
    removed, sidecars it merged into get their old bytes back.

    Example: starsort undo --since 2h
    """
    from ..library import undo
    from ..store.db import connect, migrate
    if undo_all == (since is not None):
        click.echo("say what to undo: --since TIME or --all", err=True)
        sys.exit(2)
    try:
        t = None if undo_all else undo.parse_since(since)
    except ValueError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    cfg, _ = load(config_path)
    if not Path(cfg.database).exists():
        click.echo(f"no database at {cfg.database}: nothing to undo", err=True)
        sys.exit(1)
    refuse_if_running(cfg, "undo")
    db = connect(cfg.database)
    migrate(db, cfg.database)
    res = undo.undo(db, t, echo=click.echo)
    for line in res.kept:
        click.echo(f"kept {line}")
    for line in res.skipped:
        click.echo(f"not restored: {line}", err=True)
    click.echo(f"{len(res.restored)} photo(s) restored, {len(res.removed)} file(s) starsort wrote removed,"
               f" {len(res.skipped)} not restored", err=True)
    sys.exit(1 if res.skipped else 0)
