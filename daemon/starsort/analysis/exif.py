"""EXIF validation stage: which required tags a photo lacks, and what looks wrong.

Runs in the worker right after decode (see `pipeline.ANALYSIS`) and fills
`job.exif_missing`, `job.exif_problems` and `job.exif` (the checked values as
exiv2 prints them). The report shows them as `exif_ok`, `exif_missing` and
`exif_problems`, the checks an image-validation pass runs on a folder.

* Tags are read with exiv2 (pyexiv2) for JPEGs and raws alike: it reads only
  the metadata segments (0.1-5 ms a file here) and knows every raw format the
  decoder does, so one reader gives one spelling of every tag.
* A required name is matched against the last part of the exiv2 key in the
  Exif.Image and Exif.Photo groups (DateTimeOriginal is Exif.Photo.
  DateTimeOriginal in a Sony file and Exif.Image.DateTimeOriginal in a Kodak
  one); a full key (`Exif.Photo.LensModel`) matches only itself. `ISO` means
  ISOSpeedRatings, which EXIF 2.3 renamed PhotographicSensitivity (same tag).
* An empty value (a blank Model, a date of 0000:00:00) counts as missing.
* Problems: a capture time in the future (more than a day ahead, for time
  zones) or before `exif.earliest_year`, a capture time that is not a date,
  and a zero or negative exposure time, f-number or ISO.

The checks run at analysis time, with the config then in force; a photo
whose EXIF cannot be read at all has every required tag missing. Metadata
never fails the stage: a photo is rated whatever its EXIF says.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .job import Job

if TYPE_CHECKING:
    from .job import Context

log = logging.getLogger(__name__)

_GROUPS = ("Exif.Photo", "Exif.Image")
_ALIASES = {"iso": ("ISOSpeedRatings", "PhotographicSensitivity", "ISO")}
# Read whatever `required` says: these are the tags the problem checks use.
_CHECKED = ("DateTimeOriginal", "ExposureTime", "FNumber", "ISO")
_DATETIME = re.compile(r"^\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
# A camera set to another time zone than the computer is up to 14 hours ahead.
_FUTURE_SLACK = timedelta(days=1)


def run(job: Job, ctx: Context) -> None:
    cfg = ctx.config.exif
    tags = read_tags(job.path)
    job.exif = {name: v for name in dict.fromkeys([*_CHECKED, *cfg.required])
                if (v := lookup(tags, name)) is not None}
    job.exif_missing = missing(tags, cfg.required)
    job.exif_problems = problems(tags, cfg.earliest_year)


def read_tags(path: str) -> dict[str, str]:
    """The photo's EXIF as exiv2 prints it ({} if it has none or exiv2 cannot read it)."""
    try:
        import pyexiv2

        pyexiv2.set_log_level(3)  # errors only: maker-note warnings are noise
        with pyexiv2.Image(path) as img:
            return img.read_exif(encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - unreadable EXIF is a finding, not a failure
        log.debug("%s: no readable EXIF (%s)", path, e)
        return {}


def lookup(tags: dict[str, Any], name: str) -> str | None:
    """The value of a required tag name, or None if absent or blank."""
    if name.startswith("Exif."):
        candidates = [name]
    else:
        names = _ALIASES.get(name.casefold(), (name,))
        candidates = [f"{g}.{n}" for n in names for g in _GROUPS]
    for key in candidates:
        v = tags.get(key)
        if v is None:
            continue
        v = str(v).replace("\x00", "").strip()
        if v and not (key.endswith("DateTimeOriginal") and v.startswith("0000")):
            return v
    return None


def missing(tags: dict[str, Any], required: list[str]) -> list[str]:
    return [name for name in required if lookup(tags, name) is None]


def problems(tags: dict[str, Any], earliest_year: int, now: datetime | None = None) -> list[str]:
    """Plain-language problems with the values present, in a fixed order."""
    now = now or datetime.now()
    out: list[str] = []
    raw_dt = _first(tags, "DateTimeOriginal")
    if raw_dt is not None:
        taken = _parse_datetime(raw_dt)
        if taken is None:
            out.append(f"DateTimeOriginal is not a date: {raw_dt!r}")
        elif taken > now + _FUTURE_SLACK:
            out.append(f"DateTimeOriginal {taken.isoformat()} is in the future")
        elif taken.year < earliest_year:
            out.append(f"DateTimeOriginal {taken.isoformat()} is before {earliest_year}")
    for name in ("ExposureTime", "FNumber", "ISO"):
        v = lookup(tags, name)
        if v is None:
            continue
        number = _number(v)
        if number is None:
            out.append(f"{name} is not a number: {v!r}")
        elif number <= 0:
            out.append(f"{name} is {v} (zero or negative)")
    return out


def _first(tags: dict[str, Any], name: str) -> str | None:
    # The raw text, blank dates included, so a 0000:00:00 clock is reported
    # as missing (lookup) and not also as "not a date".
    for g in _GROUPS:
        v = tags.get(f"{g}.{name}")
        if v is not None and str(v).strip() and not str(v).startswith("0000"):
            return str(v)
    return None


def _parse_datetime(v: str) -> datetime | None:
    m = _DATETIME.match(v)
    if not m:
        return None
    try:
        return datetime(*(int(x) for x in m.groups()))
    except ValueError:
        return None


def _number(v: str) -> float | None:
    """An EXIF rational ('1/250', '40/10'), integer or list (first value)."""
    first = v.split()[0]
    try:
        return float(Fraction(first))
    except ZeroDivisionError:
        return 0.0  # "0/0" is how cameras write an unknown value
    except ValueError:
        return None
