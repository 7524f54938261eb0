"""`starsort report`: one row per photo, as CSV or JSON."""
from __future__ import annotations

from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load, open_readonly



@cli.command("report")
@click.option("--format", "-f", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write here instead of stdout.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def report_cmd(fmt: str, output: Path | None, config_path: Path | None) -> None:
    """One row per photo: where it came from, where it is, and how it was rated.

    Example: starsort report --format csv --output shoot.csv
    """
    from ..store import queries as report
    cfg, _ = load(config_path)
    text = report.render(open_readonly(cfg), fmt, cfg.duplicates.max_distance)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
