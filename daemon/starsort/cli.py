"""The `starsort` command line. Only this module turns exceptions into messages and exit codes."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from . import __version__
from . import config as config_mod

CONFIG_HELP = "Config file (default: $XDG_CONFIG_HOME/starsort/config.yaml)."


def _load(path: Path | None) -> tuple[config_mod.Config, Path | None]:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as e:
        for line in e.problems:
            click.echo(f"{e.source}: {line}", err=True)
        sys.exit(2)


def _open_readonly(cfg: config_mod.Config):
    from .db import connect
    if not Path(cfg.database).exists():
        click.echo(f"no database at {cfg.database} yet: starsort has not run with this config", err=True)
        sys.exit(1)
    return connect(cfg.database, readonly=True)


@click.group()
@click.version_option(__version__, prog_name="starsort")
def cli() -> None:
    """Watch camera-import folders, rate each photo 1-5 stars by face sharpness,
    and file it into a star folder.

    \b
    starsort run              run the service in the foreground
    starsort status           what the service is doing
    starsort report -f csv    one row per photo
    starsort config example   a documented config file
    """


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--once", is_flag=True, help="Process everything now in the inboxes, wait until the queue is empty, and exit.")
def run(config_path: Path | None, once: bool) -> None:
    """Run the service in the foreground (systemd and launchd supervise it).

    Example: starsort run --config ~/.config/starsort/config.yaml
    """
    cfg, source = _load(config_path)
    logging.basicConfig(level=cfg.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("starsort")
    log.info("starsort %s; config %s; library %s; database %s", __version__, source or "(defaults)",
             cfg.library, cfg.database)
    from .service import Service
    try:
        code = Service(cfg, source, once=once).run()
    except Exception:
        log.exception("starsort stopped on an unexpected error")
        sys.exit(1)
    sys.exit(code)


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Queue depth, counts by state and by stars, the last error, and uptime.

    Example: starsort status --json
    """
    from . import report
    cfg, _ = _load(config_path)
    db = _open_readonly(cfg)
    s = report.status(db)
    click.echo(json.dumps(s, indent=2) if as_json else report.format_status(s), nl=as_json)


@cli.command("report")
@click.option("--format", "-f", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write here instead of stdout.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def report_cmd(fmt: str, output: Path | None, config_path: Path | None) -> None:
    """One row per photo: where it came from, where it is, and how it was rated.

    Example: starsort report --format csv --output shoot.csv
    """
    from . import report
    cfg, _ = _load(config_path)
    text = report.render(_open_readonly(cfg), fmt)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


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
    cfg, source = _load(path or config_path)
    click.echo(f"{source or 'defaults (no config file)'}: ok")
    click.echo(f"  inboxes:  {', '.join(str(p) for p in cfg.inboxes)}")
    click.echo(f"  library:  {cfg.library}")
    click.echo(f"  database: {cfg.database}")


@config_group.command("example")
def config_example() -> None:
    """Print a config file documenting every key, with its default.

    Example: starsort config example > ~/.config/starsort/config.yaml
    """
    click.echo(config_mod.render_example(), nl=False)
