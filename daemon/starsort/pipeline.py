"""The order of the stages, written once.

A photo goes:

  watcher -> intake (queue table) -> settle -> [worker process]
      decode -> exif -> phash -> faces -> blur -> rate
  -> [service, single writer] cluster -> filing (star folder + XMP)

The analysis stages run in a worker process (see `worker.py`), so a decoder
crash costs one photo, not the service. `cluster` runs in the service because
it is incremental and order-dependent (one writer, like Immich's
non-concurrent duplicate-detection queue); filing runs there because it owns
the move journal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import blur, decode, exif, faces, phash, rate
from .config import Config
from .job import Job

# Each module exposes run(job, ctx) -> None and fills in its part of the Job.
ANALYSIS = (decode, exif, phash, faces, blur, rate)


@dataclass
class Context:
    """What the stages share inside one worker: the config and loaded models."""
    config: Config
    models: dict[str, Any] = field(default_factory=dict)


def analyse(job: Job, ctx: Context) -> Job:
    for stage in ANALYSIS:
        stage.run(job, ctx)
    return job
