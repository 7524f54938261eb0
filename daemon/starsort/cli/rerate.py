"""`starsort rerate`: apply the config in force (threshold, mapping) again to every filed photo."""
from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load, open_readonly


@cli.command("rerate")
@click.option("--dry-run", is_flag=True, help="Only say what would change.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def rerate_cmd(dry_run: bool, config_path: Path | None) -> None:
    """Re-rate every filed photo from its stored scores under the config in force, and move
    the ones whose stars change. Photos the photographer decided are left as they are.

    This is how to change blur.threshold after a shoot: edit the config, then
    `starsort rerate --dry-run` to see what moves, then `starsort rerate`.
    Nothing is analysed again. With the service running, it does the moving.

    Example: starsort rerate --dry-run
    """
    from ..store import review, settings
    cfg_file, source = load(config_path)
    db = open_readonly(cfg_file)
    cfg, standing = settings.in_force(db, cfg_file)
    changes = review.rerate_changes(db, cfg)
    moves: dict[tuple[int, int], int] = {}
    for _, old, new in changes:
        moves[(old, new)] = moves.get((old, new), 0) + 1
    where = " (set from the review page)" if "blur.threshold" in standing else ""
    click.echo(f"at blur.threshold {cfg.blur.threshold:g}{where}: {len(changes)} photo(s) change stars"
               + "".join(f"\n  {o}★ -> {n}★: {k}" for (o, n), k in sorted(moves.items())))
    if dry_run or not changes:
        return
    from .review import running_page
    port = running_page(cfg_file)
    if port:
        _ask_service(port, cfg_file, len(changes))
        return
    from .group import refuse_if_running
    refuse_if_running(cfg_file, "rerate")
    from ..library import rerate
    from ..library.context import Library
    from ..store.db import Writer
    writer = Writer(cfg.database).start()
    try:
        res = rerate.apply(Library(cfg, writer, once=True), cfg)
    finally:
        writer.close()
    click.echo(f"moved {res['moved']} photo(s)" + (f"; {res['not_moved']} could not be moved (see the log)"
                                                   if res["not_moved"] else ""))
    sys.exit(1 if res["not_moved"] else 0)


def _ask_service(port: int, cfg, expected: int) -> None:
    """The running service owns the library: ask it, through its API, and wait until it is done."""
    from ..web.security import load_token
    token = load_token(cfg.database, create=False)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{base}/api/rerate", data=b"{}", headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        json.load(r)
    click.echo(f"the running service is moving them (pid from `starsort status`); waiting ...")
    end = time.monotonic() + 300
    while time.monotonic() < end:
        time.sleep(0.5)
        with urllib.request.urlopen(urllib.request.Request(f"{base}/api/whatif", headers=headers),
                                    timeout=10) as r:
            if json.load(r)["changes"] == 0:
                click.echo(f"done: {expected} photo(s) re-rated")
                return
    click.echo("the service has not finished yet; `starsort rerate --dry-run` shows what is left", err=True)
    sys.exit(1)
