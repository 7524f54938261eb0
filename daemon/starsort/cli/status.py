"""`starsort status`: what the service is doing."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load, open_readonly



@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Queue depth, counts by state and by stars, the last error, and uptime.

    Example: starsort status --json
    """
    from ..store import health, settings
    from ..store import queries as report
    cfg, _ = load(config_path)
    db = open_readonly(cfg)
    s = health.status(db, cfg)
    in_force, s["settings"] = settings.in_force(db, cfg)
    s["blur_threshold"] = in_force.blur.threshold
    click.echo(json.dumps(s, indent=2) if as_json else report.format_status(s), nl=as_json)
