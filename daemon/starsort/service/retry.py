"""The retry policy: what the deciding thread does with an analysis that did not succeed.

    bad       the file is unusable: quarantined (a pair is first tried on its raw),
              but not while it may still be being written (see `bad`)
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
import os
import time

from ..analysis.job import Answer, Status
from ..library import outcomes
from ..library.context import Library
from ..store import photos

log = logging.getLogger("starsort.service")

CRASH_ATTEMPTS = 2      # a photo that crashes the decoder twice is quarantined
ERROR_ATTEMPTS = 3      # a photo that hits an unexpected error 3 times is failed
# A file that looks cut short is judged only once nothing has written to it
# for this long (or its writer closed it and it then held still for
# settle_seconds): tethering software and slow card readers stall for
# seconds mid-file, and a file quarantined mid-write would be completed in
# quarantine, a whole photo labelled broken.
VERDICT_AFTER = 60.0
FIRST_RECHECK = 2.0     # then 4, 8, 16, 32 s: each look is a full decode


def _now() -> float:
    return time.time()


class Retries:
    def __init__(self, lib: Library, once: bool = False):
        self.lib = lib
        # --once and `sort` take files that are complete: judged at once.
        self.once = once
        self._raw_only: set[int] = set()    # pairs whose JPEG the decoder refused
        self._recheck: dict[int, float] = {}    # photo -> its next wait, while it may still be written
        self._closed: dict[str, float] = {}     # path -> when its writer last closed it

    def closed(self, path: str) -> None:
        """From a watcher thread: the writer closed `path` after writing to it."""
        self._closed[path] = time.time()

    def forget_closed(self, older_than: float = 3600.0) -> None:
        cutoff = time.time() - older_than
        for p in [p for p, t in self._closed.items() if t < cutoff]:
            self._closed.pop(p, None)

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
        self._recheck.pop(photo_id, None)

    def bad(self, photo_id: int, reason: str) -> None:
        """The decoder judged the file unusable. While it may still be being written,
        that is not a verdict: look again later, waiting longer each time."""
        row = self.lib.photo(photo_id)
        quiet = self._quiet_for(row)
        if not self.once and quiet is not None and quiet < VERDICT_AFTER:
            delay = self._recheck.get(photo_id, FIRST_RECHECK)
            self._recheck[photo_id] = delay * 2
            self.lib.retry_at[photo_id] = time.monotonic() + delay
            log.info("%s looks unusable (%s), but it was written %.0fs ago: looking again in %.0fs",
                     row["original_path"], reason, quiet, delay)
            return
        self._recheck.pop(photo_id, None)
        if not self._try_raw_instead(photo_id, reason):
            outcomes.quarantine(self.lib, photo_id, reason)

    def _quiet_for(self, row: dict) -> float | None:
        """Seconds since anything last wrote to the photo's files; None when that is not a
        reason to wait (the files are gone, or their writer closed them and they held still)."""
        now = _now()
        changed = []
        closed = True
        for path in (row["original_path"], row["pair_original_path"]):
            if not path:
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            # ctime, not mtime: a copy that keeps the camera's mtime (cp -p,
            # rsync -t) still moves ctime with every write.
            last = max(st.st_mtime, st.st_ctime)
            changed.append(last)
            closed = closed and self._closed.get(path, 0.0) >= last
        if not changed:
            return None
        quiet = now - max(changed)
        if closed and quiet >= self.lib.cfg.settle_seconds:
            return None
        return quiet

    def failed(self, answer: Answer) -> None:
        photo_id, status, payload = answer
        lib = self.lib
        if status is Status.BAD:
            self.bad(photo_id, payload)
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
