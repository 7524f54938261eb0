"""The retry policy: what the deciding thread does with an analysis that did not succeed.

    bad       the file is unusable: quarantined (a pair is first tried on its raw)
    vanished  the file left the inbox: closed as vanished
    crashed,  the decoder crashed or hung: tried again; after CRASH_ATTEMPTS,
    timeout   quarantined (a pair first tried on its raw)
    error     a bug or an infrastructure failure: tried again; after
              ERROR_ATTEMPTS, failed (the file may well be fine)

Filings and reads that failed for want of disk or permission wait until
`Library.retry_at` says they are due.
"""
from __future__ import annotations

import logging
import time

from ..analysis.job import Answer, Status
from ..library import outcomes
from ..library.context import Library
from ..store import photos

log = logging.getLogger("starsort.service")

CRASH_ATTEMPTS = 2      # a photo that crashes the decoder twice is quarantined
ERROR_ATTEMPTS = 3      # a photo that hits an unexpected error 3 times is failed


class Retries:
    def __init__(self, lib: Library):
        self.lib = lib
        self._raw_only: set[int] = set()    # pairs whose JPEG the decoder refused

    def waiting(self) -> list[int]:
        """Photos whose retry is not due yet."""
        now = time.monotonic()
        return [i for i, t in self.lib.retry_at.items() if t > now]

    def due(self, photo_id: int) -> bool:
        """True (and forgotten) once a waiting photo may be tried again."""
        if self.lib.retry_at.get(photo_id, 0) <= time.monotonic():
            self.lib.retry_at.pop(photo_id, None)
            return True
        return False

    def raw_only(self, photo_id: int) -> bool:
        return photo_id in self._raw_only

    def succeeded(self, photo_id: int) -> None:
        self._raw_only.discard(photo_id)

    def failed(self, answer: Answer) -> None:
        photo_id, status, payload = answer
        lib = self.lib
        if status is Status.BAD:
            if not self._try_raw_instead(photo_id, payload):
                outcomes.quarantine(lib, photo_id, payload)
        elif status is Status.VANISHED:
            outcomes.vanished(lib, photo_id)
        else:
            first_line = str(payload).splitlines()[0]
            limit = ERROR_ATTEMPTS if status is Status.ERROR else CRASH_ATTEMPTS
            attempts = lib.call(lambda db: photos.count_attempt(db, photo_id, first_line))
            if attempts < limit:
                log.warning("photo %d: %s; trying again", photo_id, first_line)
            elif status is Status.ERROR:
                outcomes.fail(lib, photo_id, first_line)
                log.debug("%s", payload)
            elif self._try_raw_instead(photo_id, payload):
                lib.call(lambda db: photos.reset_attempts(db, photo_id))
            else:
                outcomes.quarantine(lib, photo_id, payload)

    def _try_raw_instead(self, photo_id: int, why: str) -> bool:
        """A pair whose JPEG failed analysis is analysed again on its raw (once).

        A card error often cuts the JPEG of a pair while the raw, the
        photographer's real original, is whole.
        """
        row = self.lib.photo(photo_id)
        if not row["pair_original_path"] or photo_id in self._raw_only:
            self._raw_only.discard(photo_id)
            return False
        self._raw_only.add(photo_id)
        self.lib.event("WARNING", f"the JPEG of {row['original_path']} cannot be analysed ({str(why).splitlines()[0]});"
                       " rating the pair on its raw")
        return True
