"""Run analysis stages on fixtures, with one MTCNN per test session."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from starsort.analysis import filetype
from starsort.analysis import faces
from starsort.config import Config
from starsort.analysis.job import Job
from starsort.pipeline import ANALYSIS, Context

from ..helpers import DATA


@lru_cache(maxsize=1)
def context() -> Context:
    """The default config, with MTCNN loaded once for the whole session."""
    cfg = Config()
    ctx = Context(config=cfg)
    ctx.models["mtcnn"] = faces.load_detector(cfg.faces)
    return ctx


def context_with(**sections: dict[str, Any]) -> Context:
    """A config with some sections overridden, sharing the session's MTCNN.

    Only for overrides the detector does not depend on (not `faces.min_size`).
    """
    base = context()
    cfg = Config.model_validate({**base.config.model_dump(mode="json"), **sections})
    return Context(config=cfg, models=base.models)


def run(name_or_path: str | Path, upto: str | None = None, ctx: Context | None = None) -> Job:
    """Analyse a fixture (a name in tests/data, or a path) through stage `upto` inclusive."""
    path = str(name_or_path if "/" in str(name_or_path) else DATA / name_or_path)
    job = Job(photo_id=1, path=path, kind=filetype.decode_kind(path))
    ctx = ctx or context()
    for stage in ANALYSIS:
        stage.run(job, ctx)
        if upto is not None and stage.__name__.endswith("." + upto):
            break
    return job
