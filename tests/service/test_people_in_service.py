"""People in the running service: faces grouped after a batch, a name given through the service,
and faces of photos filed before embeddings existed embedded in the background."""
from __future__ import annotations

import json
import shutil
import signal
import sqlite3

import pytest

from starsort.library import xmp

from ..daemon import Daemon
from ..helpers import DATA

pytestmark = pytest.mark.e2e

PHOTOS = ("kit_with_rose.jpg", "rose_leslie_img1.jpg", "clapton-2.jpg")


def _people(d: Daemon) -> list[dict]:
    return json.loads(d.cli("people", "list", "--json").stdout)


def _pair(people: list[dict]) -> list[dict]:
    return [p for p in people if {f["path"].rsplit("/", 1)[-1] for f in p["faces"]}
            == {"kit_with_rose.jpg", "rose_leslie_img1.jpg"}]


def test_the_service_groups_new_faces_and_names_go_through_it_into_xmp(tmp_path):
    d = Daemon(tmp_path, settle=0.3)
    for name in PHOTOS:
        shutil.copyfile(DATA / name, d.inbox / name)
    d.start()
    try:
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == len(PHOTOS), timeout=300,
               what="the photos to be filed")
        d.wait(lambda: _pair(_people(d)), timeout=60, what="Rose's two faces to be grouped")
        [rose] = _pair(_people(d))
        out = d.cli("people", "name", str(rose["person_id"]), "Rose Leslie").stdout    # the service does it
        assert "is Rose Leslie" in out
        assert "people name" not in d.tail().split("ERROR")[-1] or not d.errors()
        for f in rose["faces"]:
            [sidecar] = [p for p in xmp.sidecar_paths(f["path"], "adobe") if p.exists()]
            assert xmp.read_people(sidecar)["persons"] == ["Rose Leslie"]
        code, listed = d.api("GET", "/api/people")
        assert code == 200 and listed[0]["name"] == "Rose Leslie"
        assert all("path" not in f for p in listed for f in p["faces"])                 # ids, never paths
        assert d.stop(signal.SIGTERM) == 0

        # Faces filed before embeddings existed: vectors gone, the service embeds them again, idle.
        conn = sqlite3.connect(d.db)
        with conn:
            conn.execute("DELETE FROM face_vectors")
        conn.close()
        d.start()
        d.wait(lambda: d.count("SELECT count(*) FROM face_vectors") == d.count("SELECT count(*) FROM faces"),
               timeout=120, what="the old faces to be embedded in the background")
        assert d.count("SELECT count(*) FROM faces") == 4
        # Rose is still found from her photo, through the vectors made in the background.
        found = json.loads(d.cli("people", "find", str(DATA / "rose_leslie_img1.jpg"), "--json").stdout)
        assert sorted(r["original_path"].rsplit("/", 1)[-1] for r in found) == [
            "kit_with_rose.jpg", "rose_leslie_img1.jpg"]
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()
