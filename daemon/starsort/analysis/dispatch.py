"""Which file of a photo the worker analyses, and how it decodes it, judged by its bytes.

A RAW+JPEG pair is analysed on its JPEG (cheaper to decode, and what the
camera rendered); a JPEG that is cut short or is not a JPEG at all sends
the pair to its raw instead, because a card error often cuts the JPEG
while the raw, the photographer's real original, is whole. The name never
decides: a JPEG named .nef is decoded as a JPEG.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import filetype
from .job import BadInput


@dataclass(frozen=True)
class Submit:
    path: str
    kind: str           # "jpeg" | "raw"


@dataclass(frozen=True)
class Refuse:
    reason: str         # the file is not a usable photo: quarantine it


@dataclass(frozen=True)
class Vanished:
    pass


@dataclass(frozen=True)
class Unreadable:
    error: OSError      # starsort may not read it: leave it, report it, retry


Decision = Submit | Refuse | Vanished | Unreadable


def choose(original: str, pair: str | None, raw_only: bool = False) -> Decision:
    """Decide for one photo; `raw_only` once its JPEG has failed analysis."""
    candidates = [original] if raw_only or not pair else [pair, original]
    refused: BadInput | None = None
    for path in candidates:
        try:
            return Submit(path, filetype.decode_kind(path))
        except BadInput as e:
            refused = refused or e
        except FileNotFoundError:
            return Vanished()
        except OSError as e:
            return Unreadable(e)
    return Refuse(str(refused))
