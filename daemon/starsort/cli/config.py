"""`starsort config check|example`: validate a config file, or print a documented one."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import config as config_mod
from .group import CONFIG_HELP, cli, load



@cli.group("config")
def config_group() -> None:
    """Check a config file, or print a documented example."""


@config_group.command("check")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.argument("path", required=False, type=click.Path(path_type=Path))
def config_check(config_path: Path | None, path: Path | None) -> None:
    """Validate a config file: one line per problem, exit 2 if there are any.

    Example: starsort config check ~/.config/starsort/config.yaml
    """
    cfg, source = load(path or config_path)
    where = source or "defaults (no config file)"
    errors, warnings = config_mod.folder_problems(cfg)
    for line in errors:
        click.echo(f"{where}: {line}", err=True)
    if errors:
        sys.exit(2)
    for line in warnings:
        click.echo(f"{where}: warning: {line}", err=True)
    click.echo(f"{where}: ok")
    click.echo(f"  inboxes:  {', '.join(str(p) for p in cfg.inboxes)}")
    click.echo(f"  library:  {cfg.library}")
    click.echo(f"  database: {cfg.database}")


@config_group.command("example")
def config_example() -> None:
    """Print a config file documenting every key, with its default.

    Example: starsort config example > ~/.config/starsort/config.yaml
    """
    click.echo(config_mod.render_example(), nl=False)
