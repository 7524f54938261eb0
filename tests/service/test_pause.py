"""Pausing intake: files that land are recorded, none is analysed or moved, and resume files them."""
from __future__ import annotations

import json
import shutil
import signal
import time

from ..daemon import Daemon
from ..helpers import DATA

PHOTOS = ("ivan.jpg", "clapton-2.jpg", "no-faces.jpg")


def _status(d: Daemon) -> dict:
    return json.loads(d.cli("status", "--json").stdout)


def _land(d: Daemon) -> None:
    for name in PHOTOS:
        shutil.copyfile(DATA / name, d.inbox / name)


def test_paused_intake_records_what_lands_but_moves_nothing_until_resume_files_it(tmp_path):
    d = Daemon(tmp_path, settle=0.3, rescan=1.0, analyser="tests.faults.doubles:serve")
    d.start()
    try:
        d.wait(d.started, what="the service to start")
        out = d.cli("pause").stdout
        assert "intake paused" in out
        d.wait(lambda: "intake paused (by starsort pause)" in d.tail(), what="the service to see the pause")
        _land(d)
        d.wait(lambda: d.count("SELECT count(*) FROM inbox") == len(PHOTOS), what="the files to be recorded")
        time.sleep(3 * 0.3 + 2.5)               # past settle time and a rescan: still nothing moves
        assert sorted(p.name for p in d.inbox.iterdir()) == sorted(PHOTOS)
        assert d.count("SELECT count(*) FROM photos") == 0
        s = _status(d)
        assert s["paused"] is True and s["state"] == "paused"
        assert s["queue_depth"] == len(PHOTOS)
        assert s["line"] == f"intake paused · {len(PHOTOS)} waiting"
        assert "intake PAUSED since" in d.cli("status").stdout

        assert "intake resumed" in d.cli("resume").stdout
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == len(PHOTOS),
               what="the recorded files to be filed after resume")
        assert list(d.inbox.iterdir()) == []
        assert _status(d)["paused"] is False
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()


def test_a_pause_outlives_a_restart_and_the_review_api_lifts_it(tmp_path):
    d = Daemon(tmp_path, settle=0.3, rescan=1.0, analyser="tests.faults.doubles:serve")
    out = d.cli("pause").stdout                 # the service is not running yet
    assert "it will start paused" in out
    d.start()
    try:
        d.wait(d.started, what="the service to start")
        _land(d)
        d.wait(lambda: d.count("SELECT count(*) FROM inbox") == len(PHOTOS), what="the files to be recorded")
        time.sleep(2.0)
        assert d.count("SELECT count(*) FROM photos") == 0
        code, body = d.api("POST", "/api/intake", {"paused": False})
        assert code == 200 and body["paused"] is False
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == len(PHOTOS),
               what="filing after the page resumed intake")
        code, body = d.api("POST", "/api/intake", {"paused": True, "by": "tray"})
        assert code == 200 and body["paused"] is True and body["state"] == "paused"
        d.wait(lambda: "intake paused (by tray)" in d.tail(), what="the service to see the tray's pause")
        code, body = d.api("POST", "/api/intake", {"paused": "yes"})
        assert code == 400
    finally:
        d.close()
