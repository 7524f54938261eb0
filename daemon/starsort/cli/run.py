"""`starsort run`: the service in the foreground."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .. import __version__
from .group import CONFIG_HELP, OneLineFormatter, cli, load, refuse_if_running



@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--once", is_flag=True, help="Process everything now in the inboxes, wait until the queue is empty, and exit.")
def run(config_path: Path | None, once: bool) -> None:
    """Run the service in the foreground (systemd and launchd supervise it).

    Example: starsort run --config ~/.config/starsort/config.yaml
    """
    cfg, source = load(config_path)
    # One deciding process per database: a second would file the same inboxes.
    refuse_if_running(cfg, "run")
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=cfg.log_level, stream=sys.stderr, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLineFormatter(fmt))
    log = logging.getLogger("starsort")
    log.info("starsort %s; config %s; library %s; database %s", __version__, source or "(defaults)",
             cfg.library, cfg.database)
    from ..service import Service
    try:
        code = Service(cfg, source, once=once).run()
    except Exception:
        log.exception("starsort stopped on an unexpected error")
        sys.exit(1)
    sys.exit(code)
