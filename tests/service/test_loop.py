"""End to end: the daemon as a subprocess, on real photos, through crashes and slow writers."""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from ..daemon import Daemon
from ..helpers import DATA, TITLED_SIDECAR, files, sha256

pytestmark = pytest.mark.e2e

GOOD = ["ivan.jpg", "clapton-2.jpg", "kit_with_rose.jpg", "no-faces.jpg", "inspireface_blur_face.jpg",
        "SonyDSC-P5_DSC00001.JPG", "two_people.ARW", "KodakDC120_P003913.KDC", "edge_jpeg_named_as_D70s.nef"]
BROKEN = ["edge_stripped_exiftool_Nikon.nef", "edge_stripped_exiftool.dng"]
SETTLE = 1.0          # real photos copied in get a second to settle


def _fill_mixed_inbox(inbox: Path) -> dict[str, str]:
    """Real photos, a RAW+JPEG pair in a subfolder, a sidecar, and broken files. Returns {name: sha}."""
    import shutil
    for name in GOOD + BROKEN:
        shutil.copyfile(DATA / name, inbox / name)
    pair = inbox / "card1" / "DCIM"
    pair.mkdir(parents=True)
    shutil.copyfile(DATA / "two_people_defocus.ARW", pair / "DSC00008.ARW")
    shutil.copyfile(DATA / "kit_with_rose.jpg", pair / "DSC00008.JPG")
    (pair / "DSC00008.xmp").write_text(TITLED_SIDECAR.format(title="first dance"))
    (inbox / "empty.JPG").write_bytes(b"")
    good = (DATA / "SonyDSC-P5_DSC00001.JPG").read_bytes()
    (inbox / "truncated.JPG").write_bytes(good[: len(good) // 2])
    (inbox / "notes.JPG").write_text("not a photo at all\n")
    (inbox / "clip.MP4").write_bytes(b"\0\0\0\x18ftypisom" + b"\0" * 100)
    (inbox / ".DS_Store").write_bytes(b"finder junk")           # ignored, stays (so hidden=False below)
    return {str(p.relative_to(inbox)): sha256(p) for p in files(inbox, hidden=False)}


def test_run_once_files_a_mixed_inbox_completely_and_byte_identical(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE)
    inputs = _fill_mixed_inbox(d.inbox)
    d.once(ok=True)

    assert [p.name for p in files(d.inbox, hidden=False)] == []      # the inbox is empty
    filed = files(d.library, hidden=False)
    filed_hashes = sorted(sha256(p) for p in filed if p.suffix.lower() != ".xmp")
    photo_hashes = sorted(h for n, h in inputs.items() if not n.endswith(".xmp"))
    assert filed_hashes == photo_hashes                               # each input exactly once, intact

    rows = d.report()
    by_name = {Path(r["original_path"]).name: r for r in rows}
    covered = {Path(r["original_path"]).name for r in rows} | {Path(r["pair_path"]).name for r in rows if r["pair_path"]}
    assert {Path(n).name for n in inputs if not n.endswith(".xmp")} <= covered

    pair = by_name["DSC00008.ARW"]
    assert pair["kind"] == "raw" and Path(pair["pair_path"]).name == "DSC00008.JPG"
    assert Path(pair["current_path"]).parent == Path(pair["pair_path"]).parent
    sidecar = Path(pair["current_path"]).with_suffix(".xmp")
    assert "first dance" in sidecar.read_text()                       # moved along, merged not replaced
    assert f'xmp:Rating="{pair["stars"]}"' in sidecar.read_text() or \
        f"<xmp:Rating>{pair['stars']}</xmp:Rating>" in sidecar.read_text()

    for name in GOOD:
        r = by_name[name]
        assert r["state"] == "done", (name, r["error"])
        assert 1 <= int(r["stars"]) <= 5
        assert Path(r["current_path"]).parent.name == ("1-star" if r["stars"] == "1" else f"{r['stars']}-stars")
        assert r["phash"] and r["cluster_id"] and r["captured_at"]
    assert by_name["edge_jpeg_named_as_D70s.nef"]["kind"] == "jpeg"   # judged by its bytes, name kept
    assert int(by_name["kit_with_rose.jpg"]["faces"]) == 2
    assert by_name["SonyDSC-P5_DSC00001.JPG"]["camera_model"] == "CYBERSHOT"

    for name in BROKEN + ["empty.JPG", "truncated.JPG", "notes.JPG", "clip.MP4"]:
        r = by_name[name]
        assert r["state"] == "quarantined" and r["error"], name
        assert Path(r["current_path"]).parent == d.library / "quarantine"
    assert "empty" in by_name["empty.JPG"]["error"]
    assert "truncated" in by_name["truncated.JPG"]["error"].lower()

    status = json.loads(d.cli("status", "--json").stdout)
    assert status["photos"]["quarantined"] == 6 and status["queue_depth"] == 0
    assert sum(status["stars"].values()) == status["photos"]["done"] == len(GOOD) + 1
    assert "quarantined" in status["last_error"]["message"]


def test_copy_mode_leaves_the_originals_and_a_second_run_files_nothing_twice(tmp_path):
    d = Daemon(tmp_path, mode="copy", settle=SETTLE)
    import shutil
    for name in ("ivan.jpg", "two_people.ARW"):
        shutil.copyfile(DATA / name, d.inbox / name)
    d.once(ok=True)
    d.once(ok=True)
    assert sorted(p.name for p in files(d.inbox, hidden=False)) == ["ivan.jpg", "two_people.ARW"]
    assert sorted(p.name for p in files(d.library, hidden=False)
                  if p.suffix != ".xmp") == ["ivan.jpg", "two_people.ARW"]
    assert len(d.report()) == 2


def _write_with_a_pause(target: Path, data: bytes, pause: float) -> None:
    """A tethered write that stalls: the first 40 % of the file, a pause, then the rest."""
    cut = len(data) * 2 // 5
    with open(target, "wb") as f:
        f.write(data[:cut])
        f.flush()
        os.fsync(f.fileno())
        time.sleep(pause)
        f.write(data[cut:])


def test_writes_that_pause_for_4_and_20_seconds_are_each_filed_once_intact_and_rated(tmp_path):
    import threading
    d = Daemon(tmp_path, settle=2.0)
    d.start()
    try:
        d.wait(lambda: d.query("SELECT heartbeat_at FROM service"), what="the service to start")
        sources = {4.0: DATA / "SonyDSC-P5_DSC00001.JPG", 20.0: DATA / "ivan.jpg"}
        (d.inbox / "tethered").mkdir()
        writers = [threading.Thread(target=_write_with_a_pause,
                                    args=(d.inbox / "tethered" / f"PAUSE{int(pause)}.JPG", src.read_bytes(), pause))
                   for pause, src in sources.items()]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        d.wait(lambda: d.query("SELECT count(*) FROM photos WHERE state = 'done'") == [(2,)], timeout=120,
               what="both paused writes to be filed")
        time.sleep(3)
        rows = {Path(o).name: (s, c, stars) for o, s, c, stars in
                d.query("SELECT original_path, state, current_path, stars FROM photos")}
        assert sorted(rows) == ["PAUSE20.JPG", "PAUSE4.JPG"], rows
        for pause, src in sources.items():
            state, current, stars = rows[f"PAUSE{int(pause)}.JPG"]
            assert state == "done" and stars is not None and "quarantine" not in current
            assert sha256(current) == sha256(src)
        assert files(d.library / "quarantine") == []
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()


def test_a_jpeg_written_in_chunks_over_six_seconds_is_filed_once_and_intact(tmp_path):
    d = Daemon(tmp_path, settle=2.0)
    d.start()
    try:
        d.wait(lambda: d.query("SELECT heartbeat_at FROM service"), what="the service to start")
        data = (DATA / "SonyDSC-P5_DSC00001.JPG").read_bytes()
        target = d.inbox / "tethered" / "DSC09999.JPG"
        target.parent.mkdir()
        chunks = 8
        with open(target, "wb") as f:
            for i in range(chunks):
                f.write(data[i * len(data) // chunks:(i + 1) * len(data) // chunks])
                f.flush()
                time.sleep(6 / chunks)
        d.wait(lambda: d.query("SELECT count(*) FROM photos WHERE state = 'done'") == [(1,)],
               what="the chunked JPEG to be filed")
        time.sleep(3)   # any second, premature queueing would show up as a second row
        rows = d.query("SELECT state, current_path, error FROM photos")
        assert len(rows) == 1 and rows[0][0] == "done", rows
        assert sha256(rows[0][1]) == hashlib.sha256(data).hexdigest()
        assert not target.exists()
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()


def test_kill_9_mid_run_then_a_restart_loses_nothing_and_files_nothing_twice(tmp_path):
    import shutil
    d = Daemon(tmp_path, settle=SETTLE)
    names = ["ivan.jpg", "clapton-2.jpg", "kit_with_rose.jpg", "no-faces.jpg", "inspireface_blur_face.jpg",
             "two_people.ARW", "SonyDSC-P5_DSC00001.JPG"]
    for i in range(2):
        for n in names:
            shutil.copyfile(DATA / n, d.inbox / f"{i}_{n}")
    inputs = sorted(sha256(p) for p in files(d.inbox, hidden=False))
    d.start()
    d.wait(lambda: (d.query("SELECT count(*) FROM photos WHERE state = 'done'") or [(0,)])[0][0] >= 2,
           what="the first photos to be filed")
    d.kill()                                        # kill -9, mid-run
    d.once(ok=True)
    assert files(d.inbox, hidden=False) == []
    filed = files(d.library, hidden=False)
    assert sorted(sha256(p) for p in filed if p.suffix != ".xmp") == inputs
    rows = d.report()
    # Each picture twice, byte for byte: one copy is filed, the other set aside as a copy of it
    # (duplicates.on_import: skip), whichever the crash let land first.
    assert len(rows) == len(inputs)
    assert sorted(r["state"] for r in rows) == ["done"] * len(names) + ["duplicate"] * len(names)


def test_a_raw_that_lands_after_its_jpeg_was_filed_follows_it_under_the_same_name(tmp_path):
    import shutil
    d = Daemon(tmp_path, settle=SETTLE)
    shutil.copyfile(DATA / "kit_with_rose.jpg", d.inbox / "DSC00042.JPG")
    d.once(ok=True)
    [first] = d.report()
    shutil.copyfile(DATA / "two_people.ARW", d.inbox / "DSC00042.ARW")
    d.once(ok=True)
    [row] = d.report()                                   # still one photo
    assert row["current_path"] == first["current_path"]
    assert Path(row["pair_path"]) == Path(first["current_path"]).with_suffix(".ARW")
    assert Path(row["pair_path"]).exists() and files(d.inbox, hidden=False) == []


def test_a_pair_whose_jpeg_is_cut_short_is_rated_on_its_whole_raw_and_filed_together(tmp_path):
    import shutil
    d = Daemon(tmp_path, settle=SETTLE)
    shutil.copyfile(DATA / "two_people.ARW", d.inbox / "DSC00050.ARW")
    good = (DATA / "SonySLT-A55__DSC3755.JPG").read_bytes()
    (d.inbox / "DSC00050.JPG").write_bytes(good[: len(good) // 2])    # a card error cut the JPEG
    sums = {p.suffix: sha256(p) for p in files(d.inbox, hidden=False)}
    d.once(ok=True)
    [row] = d.report()
    assert row["state"] == "done", row
    # two_people's two faces are sharp (the weaker clears the threshold by 67 %): the raw alone
    # earns 4 stars, from its faces.
    assert (row["stars"], row["rated_on"]) == ("4", "faces")
    raw, jpeg = Path(row["current_path"]), Path(row["pair_path"])
    assert {raw.suffix, jpeg.suffix} == {".ARW", ".JPG"} and raw.parent == jpeg.parent
    assert raw.parent.name == "4-stars"
    assert {p.suffix: sha256(p) for p in (raw, jpeg)} == sums
    assert files(d.inbox, hidden=False) == []


def test_a_read_only_library_keeps_the_photo_in_the_inbox_and_filing_resumes_once_repaired(tmp_path):
    import shutil
    if os.geteuid() == 0:
        # root ignores permissions; a file where the star folder should be blocks it just as well
        blocker = "file"
    else:
        blocker = "chmod"
    d = Daemon(tmp_path, settle=SETTLE)
    d.config.write_text(d.config.read_text().replace("rescan_interval: 2", "rescan_interval: 1"))
    d.library.mkdir()
    for n in range(1, 6):
        if blocker == "file":
            (d.library / ("1-star" if n == 1 else f"{n}-stars")).write_text("not a folder")
    if blocker == "chmod":
        d.library.chmod(0o500)
    d.start()
    try:
        d.wait(lambda: d.query("SELECT heartbeat_at FROM service"), what="the service to start")
        src = d.inbox / "IMG_1.JPG"
        shutil.copyfile(DATA / "ivan.jpg", src)
        d.wait(lambda: d.query("SELECT count(*) FROM events WHERE message LIKE '%will retry%'") not in ([], [(0,)]),
               what="the filing error")
        assert src.exists()                                     # the original is untouched
        assert d.query("SELECT state FROM photos") == [("analysed",)]
        if blocker == "file":
            for n in range(1, 6):
                (d.library / ("1-star" if n == 1 else f"{n}-stars")).unlink()
        else:
            d.library.chmod(0o755)
        d.wait(lambda: d.query("SELECT state FROM photos") == [("done",)], what="filing to resume")
        assert not src.exists()
        assert d.stop() == 0
    finally:
        d.close()


def test_an_idle_service_stops_within_5_s_of_sigterm_and_a_busy_one_within_timeout_stop_sec(tmp_path):
    import configparser
    unit = configparser.RawConfigParser(strict=False)
    unit.read(Path(__file__).resolve().parents[2] / "systemd" / "starsort.service")
    timeout_stop = float(unit.get("Service", "TimeoutStopSec"))

    idle = Daemon(tmp_path / "idle", settle=0.3, mode="rate-in-place")
    (idle.inbox / "ivan.jpg").write_bytes((DATA / "ivan.jpg").read_bytes())
    idle.start()
    try:
        idle.wait(lambda: idle.query("SELECT state FROM photos") == [("done",)], what="the photo to be rated")
        time.sleep(3)                                             # idle: nothing in hand
        t0 = time.monotonic()
        assert idle.stop(signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 5
        assert "stopped" in idle.tail()
    finally:
        idle.close()

    busy = Daemon(tmp_path / "busy", settle=0.3)
    photo = (DATA / "SonySLT-A55__DSC3755.JPG").read_bytes()
    for i in range(12):
        (busy.inbox / f"DSC{i:04d}.JPG").write_bytes(photo)
    busy.start()
    try:
        busy.wait(lambda: busy.query("SELECT count(*) FROM photos WHERE state = 'done'") not in ([], [(0,)]),
                  what="filing to begin")
        t0 = time.monotonic()
        assert busy.stop(signal.SIGTERM) == 0
        assert time.monotonic() - t0 < timeout_stop
    finally:
        busy.close()


def test_a_stop_that_hangs_still_ends_before_timeout_stop_sec_and_logs_where_each_thread_was(tmp_path):
    d = Daemon(tmp_path, settle=0.3, analyser="tests.faults.doubles:serve")
    d.start(env={"STARSORT_HANG_AT": "shutdown", "STARSORT_STOP_GRACE": "2"})
    try:
        d.wait(d.started, what="the service to start")
        t0 = time.monotonic()
        assert d.stop(signal.SIGTERM) == 1
        assert time.monotonic() - t0 < 10
    finally:
        d.close()
    log = d.logfile.read_text()
    assert "still running 2 s after the stop signal: exiting without a clean stop" in log
    assert "crashpoints.py" in log and "in shutdown" in log            # the stack of the hung thread


def test_a_configured_inbox_that_is_missing_is_never_created_and_is_taken_once_it_appears(tmp_path):
    d = Daemon(tmp_path, settle=0.3, rescan=1.0)
    card = tmp_path / "card" / "DCIM"
    d.config.write_text(d.config.read_text().replace(f"inboxes: [{d.inbox}]", f"inboxes: [{card}]"))
    d.start()
    try:
        d.wait(lambda: "does not exist (yet)" in d.tail(), what="the missing inbox to be noticed")
        time.sleep(1.5)
        assert not card.exists()                                  # never created
        card.mkdir(parents=True)                                  # the card goes in
        (card / "DSC00001.JPG").write_bytes((DATA / "ivan.jpg").read_bytes())
        d.wait(lambda: d.query("SELECT state FROM photos") == [("done",)], what="the card's photo to be filed")
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()


def test_a_card_imported_again_is_not_analysed_or_filed_twice_and_status_says_so(tmp_path):
    import shutil
    d = Daemon(tmp_path, settle=SETTLE)
    card = ["ivan.jpg", "two_people.ARW", "no-faces.jpg"]
    for n in (1, 2):
        folder = d.inbox / f"card{n}" / "DCIM" / "100MSDCF"
        folder.mkdir(parents=True)
        for name in card:
            shutil.copyfile(DATA / name, folder / name)
        d.once(ok=True)
    rows = d.report()
    log = d.logfile.read_text()

    by_state = sorted((r["state"], Path(r["original_path"]).parts[-4]) for r in rows)
    assert by_state == [("done", "card1")] * 3 + [("duplicate", "card2")] * 3
    filed = [p for p in files(d.library) if p.suffix.lower() != ".xmp"]
    assert sorted(p.name for p in filed if p.parent.name != "duplicates") == sorted(card)   # no _2 names
    assert sorted(p.name for p in filed if p.parent.name == "duplicates") == sorted(card)   # moved, kept
    assert not (d.inbox / "card2" / "DCIM").exists()           # the emptied card folders went too
    assert log.count("skipped ") == 3 and log.count("queued ") == 6
    assert len(re.findall(r"photo \d+: \d stars? \(", log)) == 3            # each picture analysed once
    assert "skipped: 3 copies of photos already filed" in d.cli("status").stdout
    exact = json.loads(d.cli("duplicates", "--json").stdout)["exact"]
    assert len(exact) == 3 and all(len(g) == 2 and Path(g[1]).parent.name == "duplicates" for g in exact)
