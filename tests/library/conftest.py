"""A Library on real folders and a real writer thread, as the service builds one, without its loop."""
from __future__ import annotations

import pytest

from starsort.config import Config
from starsort.library.context import Library
from starsort.store.db import Writer


@pytest.fixture
def make_library(folders):
    """make_library(once=True, **config) -> Library on the test's folders; writers closed at teardown."""
    made: list[Library] = []

    def make(once: bool = True, **config) -> Library:
        cfg = Config.model_validate({"inboxes": [str(folders["inbox"])], "library": str(folders["library"]),
                                     "database": str(folders["db"]), **config})
        lib = Library(cfg, Writer(cfg.database).start(), once=once)
        made.append(lib)
        return lib
    yield make
    for lib in made:
        lib.writer.close()


@pytest.fixture
def lib(make_library) -> Library:
    return make_library()
