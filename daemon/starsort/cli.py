"""The `starsort` command line. Only this module turns exceptions into messages and exit codes."""
from __future__ import annotations

import json
import os
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


class _OneLineFormatter(logging.Formatter):
    """One log record, one line: control characters in messages (a file name
    with a newline) are escaped. Tracebacks, added after this, keep theirs."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from .filetype import printable
        return printable(super().formatMessage(record))


@click.group()
@click.version_option(__version__, prog_name="starsort")
def cli() -> None:
    """Watch camera-import folders, rate each photo 1-5 stars by face sharpness,
    and file it into a star folder.

    \b
    starsort run              run the service in the foreground
    starsort status           what the service is doing
    starsort report -f csv    one row per photo
    starsort sort FOLDER      sort a folder once, without the service
    starsort undo --all       put filed photos back where they came from
    starsort duplicates       groups of duplicate photos in the library
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
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=cfg.log_level, stream=sys.stderr, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_OneLineFormatter(fmt))
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
    text = report.render(_open_readonly(cfg), fmt, cfg.duplicates.max_distance)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


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
    from . import duplicates
    cfg, _ = _load(config_path)
    d = cfg.duplicates.max_distance if max_distance is None else max_distance
    groups = duplicates.groups(_open_readonly(cfg), d)
    if as_json:
        click.echo(json.dumps([[p.path for p in g] for g in groups], indent=2))
        return
    for i, g in enumerate(groups, 1):
        click.echo(f"group {i} ({len(g)} photos):")
        for p in g:
            click.echo(f"  {p.path}")
    click.echo(f"{len(groups)} group(s) of duplicates, {sum(len(g) - 1 for g in groups)} duplicate photo(s)"
               f" (pHash distance <= {d})")


@cli.command("sort")
@click.argument("src", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--sample", type=click.IntRange(min=1), help="Sort only this many photos, drawn at random.")
@click.option("--seed", type=int, help="Seed for --sample, to draw the same photos again.")
@click.option("--convert-jpeg", is_flag=True,
              help="Also write a full-quality JPEG beside each filed raw (a full raw development: slow).")
@click.option("--library", type=click.Path(path_type=Path, file_okay=False), help="File into this library "
              "instead of the config's.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.option("--verbose", "-v", is_flag=True, help="Log each step, as the service does.")
def sort_cmd(src: Path, sample: int | None, seed: int | None, convert_jpeg: bool, library: Path | None,
             config_path: Path | None, verbose: bool) -> None:
    """Sort an existing folder once, without the service: the same pipeline and database.

    The config's mode applies (move, copy or rate-in-place). A RAW+JPEG pair
    counts as one photo. `starsort undo` takes a sort back.

    Example: starsort sort ~/Pictures/2024-05-wedding --sample 20 --seed 1
    """
    import threading
    from . import batch
    cfg, source = _load(config_path)
    cfg = batch.sort_config(cfg, src, library)
    problems = config_mod.overlap_problems(cfg.inboxes, cfg.library)
    if problems:
        for line in problems:
            click.echo(f"starsort sort: {line.replace('inboxes[0]', 'SRC')}", err=True)
        sys.exit(2)
    _refuse_if_running(cfg, "sort")
    logging.basicConfig(level="INFO" if verbose else "WARNING", stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sel = batch.select(cfg.inboxes[0], cfg.library, sample, seed)
    total = len(sel.chosen) + len(sel.others)
    click.echo(f"sorting {len(sel.chosen)} of {len(sel.photos)} photo(s) in {src} into {cfg.library}"
               + (f" (sample, seed {seed})" if sample and seed is not None else " (sample)" if sample else ""),
               err=True)
    from .service import Service
    service = Service(cfg, source, once=True)
    service.scope = os.path.join(str(cfg.inboxes[0]), "")
    if sample is not None:
        service.only = sel.paths
    tty = sys.stdout.isatty()
    bar = click.progressbar(length=total, label="sorting", show_pos=True, file=sys.stdout) if tty else None
    finished: list[dict] = []

    def on_photo(row: dict) -> None:
        finished.append(row)
        if bar is not None:
            bar.update(1)
        else:
            what = f"{row['stars']} star(s)" if row["state"] == "done" else f"{row['state']}: {row['error']}"
            click.echo(f"[{len(finished)}/{total}] {row['original_path']} -> {row['current_path'] or ''} ({what})")

    stop = threading.Event()
    started = batch.run_started_at()
    if bar is not None:
        bar.__enter__()
    watcher_thread = batch.watch_progress(cfg.database, started, stop, on_photo)
    try:
        code = service.run()
    except Exception:
        logging.getLogger("starsort").exception("sort stopped on an unexpected error")
        code = 1
    finally:
        stop.set()
        watcher_thread.join(timeout=10)
        if bar is not None:
            bar.__exit__(None, None, None)
    from .db import connect
    db = connect(cfg.database)
    if convert_jpeg and code == 0:
        _convert(db, started, tty)
    counts = {s: 0 for s in ("done", "quarantined", "failed")}
    for r in finished:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    click.echo(f"sorted {counts['done']}, quarantined {counts['quarantined']}, failed {counts['failed']};"
               f" {len(sel.photos) - len(sel.chosen)} photo(s) left in {src}", err=True)
    sys.exit(code if code else (1 if counts["failed"] else 0))


def _convert(db, started: float, tty: bool) -> None:
    import time
    from . import convert
    rows = list(db.query(
        "SELECT id, current_path FROM photos WHERE queued_at >= ? AND state = 'done' AND kind = 'raw'"
        " AND pair_original_path IS NULL ORDER BY id", [started]))
    with click.progressbar(rows, label="converting to JPEG", show_pos=True) if tty else _plain(rows) as it:
        for r in it:
            try:
                out = convert.convert(r["current_path"])
            except Exception as e:  # noqa: BLE001 - one raw LibRaw cannot develop does not stop the rest
                click.echo(f"could not convert {r['current_path']}: {e}", err=True)
                continue
            if out is None:
                continue
            now = time.time()
            from .filing import sha256_file
            with db.conn:
                db.execute("INSERT OR IGNORE INTO artifacts (photo_id, path, kind, created, original, sha256,"
                           " created_at, updated_at) VALUES (?, ?, 'converted', 1, NULL, ?, ?, ?)",
                           (r["id"], str(out), sha256_file(out), now, now))
            if not tty:
                click.echo(f"converted {r['current_path']} -> {out}")


class _plain:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return iter(self.items)

    def __exit__(self, *exc):
        return False


def _refuse_if_running(cfg: config_mod.Config, what: str) -> None:
    from . import report
    if not Path(cfg.database).exists():
        return
    s = report.status(_open_readonly(cfg))
    if s["running"]:
        click.echo(f"the starsort service is running (pid {s['pid']}) on {cfg.database}; stop it before "
                   f"`starsort {what}`", err=True)
        sys.exit(1)


@cli.command("undo")
@click.option("--since", help="Undo what was filed at or after this time: 2h, 30m, 1d, or 2026-11-22T14:00.")
@click.option("--all", "undo_all", is_flag=True, help="Undo everything in the journal.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def undo_cmd(since: str | None, undo_all: bool, config_path: Path | None) -> None:
    """Move filed photos back to where they came from, using the journal of moves.

    Nothing is overwritten: a photo whose old name is taken again stays in
    the library, and the reason is printed. Sidecars starsort created are
    removed, sidecars it merged into get their old bytes back.

    Example: starsort undo --since 2h
    """
    from . import undo
    from .db import connect, migrate
    if undo_all == (since is not None):
        click.echo("say what to undo: --since TIME or --all", err=True)
        sys.exit(2)
    try:
        t = None if undo_all else undo.parse_since(since)
    except ValueError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    cfg, _ = _load(config_path)
    if not Path(cfg.database).exists():
        click.echo(f"no database at {cfg.database}: nothing to undo", err=True)
        sys.exit(1)
    _refuse_if_running(cfg, "undo")
    db = connect(cfg.database)
    migrate(db, cfg.database)
    res = undo.undo(db, t, echo=click.echo)
    for line in res.kept:
        click.echo(f"kept {line}")
    for line in res.skipped:
        click.echo(f"not restored: {line}", err=True)
    click.echo(f"{len(res.restored)} photo(s) restored, {len(res.removed)} file(s) starsort wrote removed,"
               f" {len(res.skipped)} not restored", err=True)
    sys.exit(1 if res.skipped else 0)


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
