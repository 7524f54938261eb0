"""`starsort pause` and `starsort resume`: hold intake while cards are swapped."""
from __future__ import annotations

from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load


def _running(cfg) -> bool:
    from .review import _status
    s = _status(cfg)
    return bool(s and s["running"])


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def pause(config_path: Path | None) -> None:
    """Pause intake: new files are recorded, but nothing is analysed, filed or moved.

    Photos already in analysis (one per worker at most) are finished. The
    pause survives a restart; `starsort resume` ends it.

    Example: starsort pause
    """
    from .. import pause as switch
    cfg, _ = load(config_path)
    changed = switch.pause(cfg.database, by="starsort pause")
    state = "intake paused" if changed else "intake was already paused"
    click.echo(f"{state}: new files are recorded; nothing is analysed or filed until `starsort resume`"
               + ("" if _running(cfg) else " (the service is not running; it will start paused)"))


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def resume(config_path: Path | None) -> None:
    """Resume intake: the files recorded while paused are analysed and filed.

    Example: starsort resume
    """
    from .. import pause as switch
    cfg, _ = load(config_path)
    changed = switch.resume(cfg.database)
    click.echo("intake resumed" if changed else "intake was not paused")
