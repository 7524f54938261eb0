"""`starsort tray`: the service's state in the system tray (a process of its own)."""
from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def tray(config_path: Path | None) -> None:
    """Show the service's state in the system tray: idle, working, paused, error or down.

    The menu opens the review page, pauses and resumes intake, opens the
    library and the inbox, and shows the last error. Quitting the tray
    leaves the service running. Needs pystray (and, for a menu on Linux,
    PyGObject): `make install-tray`. PYSTRAY_BACKEND=appindicator|gtk|xorg
    picks pystray's backend.

    Example: starsort tray &
    """
    from ..tray.app import NoDesktop, Tray
    from ..tray.client import Client, Where
    from ..web.security import load_token
    from .review import _status

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    cfg, _ = load(config_path)

    def locate() -> Where | None:
        if not cfg.review.enabled:
            return None
        token = load_token(cfg.database, create=False)
        if token is None:
            return None
        s = _status(cfg)
        port = (s or {}).get("review_port") or cfg.review.port
        return Where(port, token) if port else None

    app = Tray(Client(locate), Path(cfg.library), Path(cfg.inboxes[0]))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: app.quit())
    try:
        app.run()
    except NoDesktop as e:
        click.echo(f"starsort tray: {e}", err=True)
        sys.exit(2)
