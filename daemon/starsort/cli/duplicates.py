"""`starsort duplicates`: exact copies, then look-alikes, across the whole library."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load, open_readonly


@cli.command("duplicates")
@click.option("--max-distance", type=click.IntRange(0, 16), default=None,
              help="Largest pHash distance (of 64 bits) between look-alikes [default: duplicates.max_distance].")
@click.option("--json", "as_json", is_flag=True,
              help='Machine-readable output: {"exact": [[path, ...], ...], "look_alike": [[path, ...], ...]}.')
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)
def duplicates_cmd(max_distance: int | None, as_json: bool, config_path: Path | None) -> None:
    """Duplicate photos across the whole library (not only within bursts), in two kinds.

    Exact copies have the same bytes: a card imported twice. Their first photo
    is the one filed; with duplicates.on_import: skip the others were set aside
    (in move mode, in <library>/duplicates). Look-alikes are different files of
    one picture (a re-encoded or resized copy, an export of the raw), by pHash;
    each exact copy counts once among them.

    Example: starsort duplicates --max-distance 0
    """
    from ..store import duplicates
    cfg, _ = load(config_path)
    d = cfg.duplicates.max_distance if max_distance is None else max_distance
    db = open_readonly(cfg)
    exact = duplicates.exact_groups(db)
    copies = {p.id for g in exact for p in g[1:]}
    look_alike = [g for g in ([p for p in g if p.id not in copies] for g in duplicates.groups(db, d)) if len(g) > 1]
    if as_json:
        click.echo(json.dumps({"exact": [[p.path for p in g] for g in exact],
                               "look_alike": [[p.path for p in g] for g in look_alike]}, indent=2))
        return
    for title, groups in (("exact copies (the same bytes)", exact),
                          (f"look-alikes (pHash distance <= {d})", look_alike)):
        click.echo(f"{title}:" if groups else f"{title}: none")
        for i, g in enumerate(groups, 1):
            click.echo(f"  group {i} ({len(g)} photos):")
            for p in g:
                click.echo(f"    {p.path}")
    click.echo(f"{len(exact)} group(s) of exact copies ({sum(len(g) - 1 for g in exact)} copies);"
               f" {len(look_alike)} group(s) of look-alikes ({sum(len(g) for g in look_alike)} photos)")
