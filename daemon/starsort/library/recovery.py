"""Start-up: finish what a crash interrupted, looking at the disk rather than trusting the journal."""
from __future__ import annotations

import logging

from ..store import photos
from .context import Library
from .fsops import Collision, SourceChanged
from .outcomes import finish_filing

log = logging.getLogger("starsort.library")


def recover(lib: Library) -> list[int]:
    """Sweep temp files, finish or take back interrupted filings, and reset half-said states.

    Returns the photos whose filing it finished into a star folder: they
    still need the steps that follow filing (their rating).
    """
    filer = lib.filer
    filer.sweep_temp_files()
    finished: list[int] = []
    # Unfinished journal rows, and photos whose moves all finished but
    # whose own row was not updated before the crash.
    in_filing = lib.call(photos.stuck_in_filing)
    for photo_id in sorted(set(filer.unfinished()) | set(in_filing)):
        log.info("finishing the interrupted filing of photo %d", photo_id)
        try:
            if finish_filing(lib, photo_id, filer.complete(photo_id)) == "done":
                finished.append(photo_id)
        except (Collision, SourceChanged) as e:
            log.warning("interrupted filing of photo %d cannot be finished as planned (%s); filing again", photo_id, e)
            filer.unplan(photo_id)
            # A 'done' photo was interrupted while a late member followed it:
            # the photo itself is filed; the member, back in the inbox, is
            # found by the scan and follows again.
            lib.call(lambda db: photos.unfinished_filing_restarts(db, photo_id))
        except OSError as e:
            # The library's disk is full or gone. Dying here would have the
            # service manager restart us into the same error forever; the
            # sources are all still in the inbox, so the photo waits and is
            # filed again by the retry that covers any filing error (which
            # finishes, rather than takes back, a filing whose sources began to leave).
            lib.event("ERROR", f"cannot finish the interrupted filing of photo {photo_id}: {e}; will retry")
            try:
                if not filer.committed(photo_id):
                    filer.unplan(photo_id)
            except OSError as e2:
                log.warning("photo %d: cannot take back its partial placement yet: %s", photo_id, e2)
            msg = f"cannot file: {e}"
            lib.call(lambda db: photos.filing_failed(db, photo_id, msg))
    lib.call(photos.recover)
    return finished
