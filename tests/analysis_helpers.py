"""Run analysis stages on fixtures, with one MTCNN per test session."""
from __future__ import annotations

from functools import lru_cache

from starsort import faces, filetype
from starsort.config import Config
from starsort.job import Job
from starsort.pipeline import Context, analyse

from .conftest import DATA


@lru_cache(maxsize=1)
def context() -> Context:
    cfg = Config()
    ctx = Context(config=cfg)
    ctx.models["mtcnn"] = faces.load_detector(cfg.faces)
    return ctx


def run(name_or_path, upto=None, ctx: Context | None = None) -> Job:
    """Analyse a fixture (by name in tests/data, or a path), through stage `upto` inclusive."""
    path = str(name_or_path if "/" in str(name_or_path) else DATA / name_or_path)
    job = Job(photo_id=1, path=path, kind=filetype.decode_kind(path))
    ctx = ctx or context()
    if upto is None:
        return analyse(job, ctx)
    from starsort.pipeline import ANALYSIS
    for stage in ANALYSIS:
        stage.run(job, ctx)
        if stage.__name__.endswith("." + upto):
            break
    return job
