"""A photo given on the command line (`starsort people find REF.jpg`), analysed in this process
as a worker would: decode, faces, blur, embed. It is not filed and not stored."""
from __future__ import annotations

from ..config import Config
from . import blur, decode, embed, faces, filetype
from .job import BadInput, Context, Face, Job


class NoFace(Exception):
    """The reference photo cannot serve: unreadable, or no face in it."""


def faces_of(path: str, cfg: Config) -> list[Face]:
    """Its faces, embedded, numbered from the left (index 0 = the leftmost)."""
    try:
        kind = filetype.decode_kind(path)
    except BadInput as e:
        raise NoFace(f"{path}: {e}") from None
    ctx = Context(cfg.model_copy(update={"people": cfg.people.model_copy(update={"enabled": True})}))
    job = Job(0, path, kind)
    try:
        decode.run(job, ctx)
    except BadInput as e:
        raise NoFace(f"{path}: {e}") from None
    ctx.models["mtcnn"] = faces.load_detector(cfg.faces)
    faces.run(job, ctx)
    if not job.faces:
        raise NoFace(f"{path}: no face found in it")
    blur.run(job, ctx)
    embed.run(job, ctx)
    return sorted(job.faces, key=lambda f: f.box[0])

