"""`starsort sort SRC`: sort an existing folder once, without the service running.

A batch sorter is pointed at a folder: it
takes a random sample of 20 photos, rates them and moves them into star
folders. This is that, built from the service itself rather than beside it:
`Service(once=True)` with SRC as its only inbox, so a sorted folder goes
through the same pipeline, journal, crash recovery and database as photos
the daemon files, and `starsort report` and `starsort undo` see both.

* Sampling draws photos, not files: a RAW+JPEG pair and its sidecars are one
  photo, kept or left together, so a sample never splits a pair. The draw is
  `random.Random(seed).sample` over the photos sorted by path, so a seed
  gives the same sample of the same folder on any machine.
* Files are already complete, so nothing waits to settle (settle_seconds 0).
* Progress comes from the database (photos of this run reaching done,
  quarantined or failed), polled from a thread; the service itself is not
  told about the progress bar.
"""
from __future__ import annotations

import logging
import os
import random
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click

from .. import config as config_mod
from ..analysis import filetype
from ..config import Config
from ..intake import watcher
from ..library.fsops import sha256_file
from ..library.names import photo_stem, stars_text
from ..store import artifacts
from .group import CONFIG_HELP, cli, load, refuse_if_running

FINISHED = ("done", "quarantined", "failed", "duplicate")
# Seconds between a photo's updated_at being taken and its commit being seen, at most.
COMMIT_SLACK = 5.0


@dataclass
class Selection:
    """The photos of a folder (each a list of its files), and the files chosen."""
    photos: list[list[str]]
    chosen: list[list[str]]
    others: list[str] = field(default_factory=list)   # neither photo nor sidecar: quarantined when sorted

    @property
    def paths(self) -> set[str]:
        return {p for files in self.chosen for p in files}


def select(src: Path, library: Path, sample: int | None = None, seed: int | None = None) -> Selection:
    """Group SRC's files into photos (same folder and stem) and draw `sample` of them."""
    groups: dict[tuple[str, str], list[str]] = {}
    sidecars: list[str] = []
    others: list[str] = []
    for p in sorted(watcher.walk(src, library)):
        if filetype.is_ignored(p, src):
            continue
        kind = filetype.ext_kind(p)
        key = (os.path.dirname(p), photo_stem(p).casefold())
        if kind in ("raw", "jpeg"):
            groups.setdefault(key, []).append(p)
        elif kind == "sidecar":
            sidecars.append(p)
        else:
            others.append(p)
    lone_sidecars = []
    for s in sidecars:
        key = (os.path.dirname(s), photo_stem(s).casefold())
        if key in groups:
            groups[key].append(s)
        else:
            lone_sidecars.append(s)
    photos = [groups[k] for k in sorted(groups)]
    if sample is None or sample >= len(photos):
        # The whole folder, as the service would take it.
        return Selection(photos, photos, others + lone_sidecars)
    chosen = random.Random(seed).sample(photos, sample)
    return Selection(photos, sorted(chosen), [])


def sort_config(cfg: Config, src: Path, library: Path | None) -> Config:
    from .. import paths
    update = {"inboxes": [paths.expand(src)], "settle_seconds": 0.0}
    if library is not None:
        update["library"] = paths.expand(library)
    return cfg.model_copy(update=update)


def watch_progress(database: Path, since: float, stop: threading.Event,
                   on_photo: Callable[[dict], None], interval: float = 0.3) -> threading.Thread:
    """Call `on_photo(row)` once for each photo that finishes after `since`, until `stop` is set."""

    def poll() -> None:
        reported: set[int] = set()
        conn = None
        # Only rows changed since the last look (through the updated_at index): reading every
        # photo finished so far, three times a second, made a long sort quadratic and took the
        # interpreter from the thread that files. A row's updated_at is taken before its commit,
        # so the window reaches back a little.
        changed_since = since
        while True:
            last_round = stop.is_set()
            if last_round:
                changed_since = since       # the summary counts every photo, however late its commit
            if conn is None and Path(database).exists():
                conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10, check_same_thread=False)
                conn.row_factory = sqlite3.Row
            if conn is not None:
                looked_at = time.time()
                try:
                    rows = conn.execute(
                        "SELECT id, original_path, current_path, state, stars, error FROM photos"
                        " WHERE updated_at >= ? AND queued_at >= ?"
                        f" AND state IN ({','.join('?' * len(FINISHED))}) ORDER BY id",
                        (changed_since, since, *FINISHED)).fetchall()
                    changed_since = max(since, looked_at - COMMIT_SLACK)
                except sqlite3.OperationalError:
                    rows = []  # the schema is being created
                for r in rows:
                    if r["id"] not in reported:
                        reported.add(r["id"])
                        on_photo(dict(r))
            if last_round:
                break
            stop.wait(interval)
        if conn is not None:
            conn.close()

    t = threading.Thread(target=poll, name="starsort-progress", daemon=True)
    t.start()
    return t


def run_started_at() -> float:
    # queued_at is written with time.time() by the service; a little slack
    # for a clock that steps backwards between here and there.
    return time.time() - 1.0


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
@click.option("--scheduler", help="Analyse on this Dask cluster (tcp://HOST:8786); this machine files. "
              "Default: the config's sort.scheduler, else here.")
@click.option("--path-map", "path_maps", multiple=True, metavar="THIS_PATH=WORKER_PATH",
              help="Where the workers see this machine's folders (repeat for several).")
def sort_cmd(src: Path, sample: int | None, seed: int | None, convert_jpeg: bool, library: Path | None,
             config_path: Path | None, verbose: bool, scheduler: str | None, path_maps: tuple[str, ...]) -> None:
    """Sort an existing folder once, without the service: the same pipeline and database.

    The config's mode applies (move, copy or rate-in-place). A RAW+JPEG pair
    counts as one photo. `starsort undo` takes a sort back.

    Example: starsort sort ~/Pictures/2024-05-wedding --sample 20 --seed 1
    """
    cfg, source = load(config_path)
    cfg = sort_config(cfg, src, library)
    if path_maps:
        try:
            cfg = cfg.model_copy(update={"sort": cfg.sort.model_validate({**cfg.sort.model_dump(),
                                                                          "path_map": list(path_maps)})})
        except ValueError as e:
            raise click.BadParameter(str(e).splitlines()[-1], param_hint="--path-map") from None
    scheduler = scheduler or cfg.sort.scheduler
    if scheduler:
        try:
            import distributed  # noqa: F401
        except ImportError:
            click.echo("starsort sort: --scheduler needs Dask: pip install 'starsort[cluster]'"
                       " (or `make install-cluster`)", err=True)
            sys.exit(2)
    problems = config_mod.overlap_problems(cfg.inboxes, cfg.library)
    if problems:
        for line in problems:
            click.echo(f"starsort sort: {line.replace('inboxes[0]', 'SRC')}", err=True)
        sys.exit(2)
    refuse_if_running(cfg, "sort")
    logging.basicConfig(level="INFO" if verbose else "WARNING", stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sel = select(cfg.inboxes[0], cfg.library, sample, seed)
    total = len(sel.chosen) + len(sel.others)
    click.echo(f"sorting {len(sel.chosen)} of {len(sel.photos)} photo(s) in {src} into {cfg.library}"
               + (f" (sample, seed {seed})" if sample and seed is not None else " (sample)" if sample else ""),
               err=True)
    from ..service import Service
    service = Service(cfg, source, once=True)
    service.scope = os.path.join(str(cfg.inboxes[0]), "")
    service.cluster = scheduler
    if sample is not None:
        service.only = sel.paths
    tty = sys.stdout.isatty()
    bar = click.progressbar(length=total, label="sorting", show_pos=True, file=sys.stdout,
                            item_show_func=lambda s: s) if tty else None
    finished: list[dict] = []
    t_first: list[float] = []

    def speed() -> str:
        if not t_first:
            t_first.append(time.monotonic())
            return ""
        rate = (len(finished) - 1) / max(1e-6, time.monotonic() - t_first[0])
        pool = service.pool
        workers = f" · {pool.workers_in_use()} worker(s)" if scheduler and hasattr(pool, "workers_in_use") else ""
        return f"{rate:.1f} photos/s{workers}"

    def on_photo(row: dict) -> None:
        finished.append(row)
        if bar is not None:
            bar.update(1, speed())
        else:
            what = (stars_text(row["stars"]) if row["state"] == "done"
                    else "a copy of a photo already filed" if row["state"] == "duplicate"
                    else f"{row['state']}: {row['error']}")
            click.echo(f"[{len(finished)}/{total}] {row['original_path']} -> {row['current_path'] or ''} ({what})")

    stop = threading.Event()
    started = run_started_at()
    if bar is not None:
        bar.__enter__()
    watcher_thread = watch_progress(cfg.database, started, stop, on_photo)
    try:
        code = service.run()
    except RuntimeError as e:
        if not scheduler:
            logging.getLogger("starsort").exception("sort stopped on an unexpected error")
        else:
            click.echo(f"\nstarsort sort: {e}", err=True)
        code = 1
    except Exception:
        logging.getLogger("starsort").exception("sort stopped on an unexpected error")
        code = 1
    finally:
        stop.set()
        watcher_thread.join(timeout=10)
        if bar is not None:
            bar.__exit__(None, None, None)
    from ..store.db import connect
    db = connect(cfg.database)
    if convert_jpeg and code == 0:
        _convert(db, started, tty)
    counts = {s: 0 for s in ("done", "quarantined", "failed", "duplicate")}
    for r in finished:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    click.echo(f"sorted {counts['done']}, quarantined {counts['quarantined']}, failed {counts['failed']}"
               + (f", skipped {counts['duplicate']} copies of photos already filed" if counts["duplicate"] else "")
               + ";"
               f" {len(sel.photos) - len(sel.chosen)} photo(s) left in {src}", err=True)
    sys.exit(code if code else (1 if counts["failed"] else 0))


def _convert(db, started: float, tty: bool) -> None:
    from ..library import convert
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
            with db.conn:
                artifacts.record_converted(db, r["id"], str(out), sha256_file(out), now)
            if not tty:
                click.echo(f"converted {r['current_path']} -> {out}")


class _plain:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return iter(self.items)

    def __exit__(self, *exc):
        return False
