"""`starsort duplicates`: groups of duplicate photos across the library."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load, open_readonly



@cli.command("duplicates")
@click.option("--max-distance", type=click.IntRange(0, 16), default=None,
              help="Largest pHash distance (of 64 bits) between duplicates [default: duplicates.max_distance].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def duplicates_cmd(max_distance: int | None, as_json: bool, config_path: Path | None) -> None:
    """Groups of duplicate photos by pHash, across the whole library (not only within bursts).

    Each group lists the photo filed first, then its duplicates.

    Example: starsort duplicates --max-distance 0
    """
    from ..store import duplicates
    cfg, _ = load(config_path)
    d = cfg.duplicates.max_distance if max_distance is None else max_distance
    groups = duplicates.groups(open_readonly(cfg), d)
    if as_json:
        click.echo(json.dumps([[p.path for p in g] for g in groups], indent=2))
        return
    for i, g in enumerate(groups, 1):
        click.echo(f"group {i} ({len(g)} photos):")
        for p in g:
            click.echo(f"  {p.path}")
    click.echo(f"{len(groups)} group(s) of duplicates, {sum(len(g) - 1 for g in groups)} duplicate photo(s)"
               f" (pHash distance <= {d})")
