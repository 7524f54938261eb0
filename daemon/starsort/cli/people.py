"""`starsort people`: find a person's photos from one face, crop their faces, and name,
merge and split the people starsort grouped."""
from __future__ import annotations

import csv
import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from .group import CONFIG_HELP, cli, load, open_readonly


@cli.group()
def people() -> None:
    """Who is in the photos: find, crop, list, name, merge, split, forget.

    Example: starsort people find ~/ref/anna.jpg --copy-to ~/anna
    """


# Cosine distances between unit vectors lie in [0, 2].
DISTANCE = click.FloatRange(0, 2, min_open=True, max_open=True)
EXPAND = click.FloatRange(0, 2, max_open=True)
EXPAND_HELP = ("Faces this close to the reference search too, averaged with it "
               "(default: people.expand_threshold; 0: the reference alone).")


def _config_option(f):
    return click.option("--config", "config_path", type=click.Path(path_type=Path), help=CONFIG_HELP)(f)


def _reference(cfg, ref: Path | None, person: str | None, face: int | None):
    """The query: the chosen face of REF (the largest by default), or a person's confirmed faces."""
    from ..library import people as lp
    from ..store import people as store
    if person is not None:
        db = open_readonly(cfg)
        row = store.person_by_name(db, person) or (store.person(db, int(person)) if person.isdigit() else None)
        if row is None:
            raise click.UsageError(f"no person {person!r} (see `starsort people list`)")
        vecs = lp.confirmed_vectors(db, row["id"])
        if not len(vecs):
            raise click.UsageError(f"{person!r} has no faces yet")
        return vecs
    if ref is None:
        raise click.UsageError("give a reference photo (REF) or --person NAME")
    from ..analysis import reference
    try:
        faces = reference.faces_of(str(ref), cfg)
    except reference.NoFace as e:
        raise click.UsageError(str(e)) from None
    if face is None:
        chosen = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    elif 1 <= face <= len(faces):
        chosen = faces[face - 1]
    else:
        raise click.UsageError(f"--face {face}: {ref} holds {len(faces)} face(s), numbered 1.. from the left")
    return chosen.embedding


def _matches(cfg, query, threshold: float | None, expand: float | None = None):
    """The photos matching `query`: searched by the running service, which keeps the library's
    vectors in memory, else read from the database here."""
    import numpy as np

    from ..store import people as store
    threshold = cfg.people.threshold if threshold is None else threshold
    expand = cfg.people.expand_threshold if expand is None else expand
    db = open_readonly(cfg)
    from .review import running_page
    port = running_page(cfg)
    if port:
        from ..web.security import load_token
        token = load_token(cfg.database, create=False)
        body = json.dumps({"vectors": np.atleast_2d(np.asarray(query, np.float32)).tolist(),
                           "threshold": threshold, "expand": expand}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/people/find", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return db, [store.Match(m["face_id"], m["photo_id"], m["distance"]) for m in json.load(r)]
        except (urllib.error.URLError, OSError):
            pass                      # the service went away: search here
    return db, store.find(store.load_vectors(db), query, threshold, expand)


@people.command("find")
@click.argument("ref", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--person", help="Search with every confirmed face of a named person instead of a photo.")
@click.option("--face", type=int, help="Which face of REF (numbered 1.. from the left); default the largest.")
@click.option("--threshold", type=DISTANCE, help="Cosine distance under which a face matches (default: people.threshold).")
@click.option("--expand", type=EXPAND, help=EXPAND_HELP)
@click.option("--copy-to", type=click.Path(file_okay=False, path_type=Path), help="Copy each photo found here (never moves).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, closest first.")
@_config_option
def find_cmd(ref, person, face, threshold, expand, copy_to, as_json, config_path) -> None:
    """Every photo with a face matching the reference face, closest first.

    Example: starsort people find ref.jpg --json
    """
    cfg, _ = load(config_path)
    query = _reference(cfg, ref, person, face)
    db, found = _matches(cfg, query, threshold, expand)
    rows = []
    for m in found:
        p = db.execute("SELECT current_path, original_path FROM photos WHERE id = ?", (m.photo_id,)).fetchone()
        box = db.execute("SELECT x1, y1, x2, y2 FROM faces WHERE id = ?", (m.face_id,)).fetchone()
        rows.append({"path": p[0] or p[1], "original_path": p[1], "face_id": m.face_id,
                     "distance": round(m.distance, 4), "box": [round(v, 1) for v in box]})
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        for r in rows:
            src = Path(r["path"])
            dst = copy_to / src.name
            n = 1
            while dst.exists():
                n += 1
                dst = copy_to / f"{src.stem}_{n}{src.suffix}"
            shutil.copy2(src, dst)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['distance']:.3f}  {r['path']}")
    click.echo(f"{len(rows)} photo(s)" + (f", copied to {copy_to}" if copy_to else ""), err=True)


@people.command("crop")
@click.argument("ref", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--person", help="Crop every face of a named person instead of matching a photo.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the crops and crops.csv.")
@click.option("--face", type=int, help="Which face of REF (numbered 1.. from the left); default the largest.")
@click.option("--threshold", type=DISTANCE, help="Cosine distance under which a face matches (default: people.threshold).")
@click.option("--expand", type=EXPAND, help=EXPAND_HELP)
@click.option("--min-size", type=int, default=128, show_default=True,
              help="Skip faces narrower than this, in original pixels.")
@click.option("--margin", type=float, default=0.1, show_default=True,
              help="Added around the face box on each side, as a share of its size.")
@click.option("--include-blurry", is_flag=True, help="Crop blurry faces too.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON too.")
@_config_option
def crop_cmd(ref, person, out_dir, face, threshold, expand, min_size, margin, include_blurry, as_json,
             config_path) -> None:
    """One crop per matching face, at full resolution, with crops.csv recording each.

    For a training set (DreamBooth, LoRA): every photo of one person, their face only.
    Raws are developed fully for this.

    Example: starsort people crop ref.jpg --out ~/anna-faces --min-size 256
    """
    from ..library import crops
    cfg, _ = load(config_path)
    query = _reference(cfg, ref, person, face)
    db, found = _matches(cfg, query, threshold, expand)
    records, skipped = crops.write(db, cfg, found, query, out_dir, min_size=min_size, margin=margin,
                                   include_blurry=include_blurry)
    if as_json:
        click.echo(json.dumps(records, indent=2))
    click.echo(f"{len(records)} crop(s) in {out_dir} (crops.csv); skipped: "
               + (", ".join(f"{n} {why}" for why, n in sorted(skipped.items())) or "none"), err=True)


@people.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "singles", is_flag=True, help="Also the faces seen once (a suggested person of one face).")
@_config_option
def list_cmd(as_json, singles, config_path) -> None:
    """Every person: named ones first, then the groups starsort suggests.

    Example: starsort people list --json
    """
    from ..store import people as store
    cfg, _ = load(config_path)
    rows = store.listing(open_readonly(cfg), singles=singles)
    if as_json:
        click.echo(json.dumps([{"person_id": p["person_id"], "name": p["name"],
                                "faces": [{"face_id": f["face_id"], "path": f["path"], "box": f["box"]}
                                          for f in p["faces"]]} for p in rows], indent=2))
        return
    for p in rows:
        confirmed = sum(f["confirmed"] for f in p["faces"])
        click.echo(f"{p['person_id']:6d}  {p['name'] or '(unnamed)':24s} {len(p['faces']):5d} face(s),"
                   f" {confirmed} confirmed")


def _change(cfg, body: dict) -> dict:
    """Carry out a people action: through the running service (the one writer), else here."""
    from .review import running_page
    port = running_page(cfg)
    if port:
        return _ask_service(port, cfg, body)
    from .group import refuse_if_running
    refuse_if_running(cfg, "people " + body["op"])
    from ..library.context import Library
    from ..service.requests import people_action
    from ..store.db import Writer
    writer = Writer(cfg.database).start()
    try:
        return people_action(Library(cfg, writer, once=True), body)
    finally:
        writer.close()


def _ask_service(port: int, cfg, body: dict) -> dict:
    from ..web.security import load_token
    token = load_token(cfg.database, create=False)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{base}/api/people", data=json.dumps(body).encode(), headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            n = json.load(r)["request"]
    except urllib.error.HTTPError as e:
        raise click.ClickException(json.loads(e.read() or b"{}").get("error", str(e))) from None
    end = time.monotonic() + 120
    while time.monotonic() < end:
        with urllib.request.urlopen(urllib.request.Request(f"{base}/api/requests/{n}", headers=headers),
                                    timeout=10) as r:
            out = json.load(r)
        if not out.get("done"):
            time.sleep(0.2)
            continue
        if not out.get("ok"):
            raise click.ClickException(out.get("message", "refused"))
        return out
    raise click.ClickException("the service has not carried it out within 2 minutes")


def _done(out: dict) -> None:
    click.echo(out.get("message", "done"))


@people.command("name")
@click.argument("person")
@click.argument("name")
@_config_option
def name_cmd(person, name, config_path) -> None:
    """Name a person (by id, or by their current name); their faces are confirmed.

    Example: starsort people name 12 "Anna"
    """
    cfg, _ = load(config_path)
    _done(_change(cfg, {"op": "name", "person": person, "name": name}))


@people.command("merge")
@click.argument("person")
@click.argument("other")
@_config_option
def merge_cmd(person, other, config_path) -> None:
    """Merge OTHER into PERSON: one person, every face confirmed.

    Example: starsort people merge Anna 17
    """
    cfg, _ = load(config_path)
    _done(_change(cfg, {"op": "merge", "person": person, "other": other}))


@people.command("split")
@click.argument("person")
@click.option("--face", "faces", type=int, multiple=True, required=True, help="A face id to move (repeat).")
@click.option("--name", help="Name the new person.")
@_config_option
def split_cmd(person, faces, name, config_path) -> None:
    """Move the given faces of PERSON to a new person (and never back automatically).

    Example: starsort people split Anna --face 301 --face 302 --name "Anna's sister"
    """
    cfg, _ = load(config_path)
    _done(_change(cfg, {"op": "split", "person": person, "faces": list(faces), "name": name}))


@people.command("not")
@click.argument("face", type=int)
@click.argument("person")
@_config_option
def not_cmd(face, person, config_path) -> None:
    """FACE is not PERSON: taken out, and never put back there automatically.

    Example: starsort people not 301 Anna
    """
    cfg, _ = load(config_path)
    _done(_change(cfg, {"op": "not", "face": face, "person": person}))


@people.command("forget")
@click.option("--yes", is_flag=True, help="Do not ask.")
@_config_option
def forget_cmd(yes, config_path) -> None:
    """Delete every face embedding and every person (the names starsort wrote into XMP too).

    Photos, ratings and face boxes stay. New photos are embedded again unless
    people.enabled is false.
    """
    cfg, _ = load(config_path)
    if not yes and not click.confirm("Delete every face embedding and every person?", default=False):
        click.echo("nothing deleted")
        sys.exit(1)
    _done(_change(cfg, {"op": "forget"}))
