"""`starsort review`: open the review page (served by the running service, or by this command)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .group import CONFIG_HELP, OneLineFormatter, cli, load


def running_page(cfg) -> int | None:
    """The port of the running service's review page, if the service runs and serves one."""
    s = _status(cfg)
    return s["review_port"] if s and s["running"] else None


def _status(cfg) -> dict | None:
    from ..store import queries
    if not Path(cfg.database).exists():
        return None
    from .group import open_readonly
    return queries.status(open_readonly(cfg))


@cli.command("review")
@click.option("--url", "url_only", is_flag=True,
              help="Print the page's address, with its token (?token=...), and exit.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser; only print the address.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def review_cmd(url_only: bool, no_browser: bool, config_path: Path | None) -> None:
    """Open the review page: every photo with its stars and why, overruled with one key.

    With the service running, its page is opened. Without it, this command
    serves the page itself (on review.port, loopback only) until Ctrl+C, with
    the service's journal and guarantees, and watches no inbox. The address
    carries a secret token; the page swaps it for a cookie at once. Scripts
    send it as `Authorization: Bearer TOKEN` instead.

    Example: starsort review --url
    """
    from ..web.server import url_with_token
    cfg, source = load(config_path)
    if not cfg.review.enabled:
        click.echo("the review page is turned off (review.enabled: false)", err=True)
        sys.exit(1)
    port = running_page(cfg)
    if port:
        url = url_with_token(port, cfg.database)
        click.echo(url)
        if not (url_only or no_browser):
            _open(url)
        return
    s = _status(cfg)
    if s and s["running"]:
        # Running without a page yet (starting up), or with it off: never a second decider.
        click.echo(f"the starsort service is running (pid {s['pid']}) but serves no review page yet; try again"
                   " in a moment", err=True)
        sys.exit(1)
    if url_only:
        click.echo("the starsort service is not running, so no page is served; `starsort review` serves it"
                   " on its own", err=True)
        sys.exit(1)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=cfg.log_level, stream=sys.stderr, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLineFormatter(fmt))
    from ..service import Service
    svc = Service(cfg, source, review_only=True)
    svc.on_page = lambda port: _announce(url_with_token(port, cfg.database), no_browser)
    sys.exit(svc.run())


def _announce(url: str, no_browser: bool) -> None:
    click.echo(url)
    if not no_browser:
        _open(url)


def _open(url: str) -> None:
    import webbrowser
    if not webbrowser.open(url):
        click.echo("open that address in your browser", err=True)
