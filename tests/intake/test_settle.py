"""Settle: a file becomes a queued photo only once it stops changing; pairs go together."""
from __future__ import annotations

import os

from starsort.intake import pairing, scan, settle

from ..helpers import copy_fixture


def _photos(db):
    return list(db.query("SELECT original_path, pair_original_path, kind, state FROM photos ORDER BY id"))


def _settle(db, now, copy_mode=False, settle_seconds=2.0):
    ready, waiting = settle.check(db, settle_seconds, now=now)
    actions = pairing.admit(db, ready, copy_mode, now=now)
    return ready, waiting, actions


def test_a_file_is_not_ready_until_its_size_and_mtime_hold_still_for_settle_seconds(fresh_db, folders):
    p = folders["inbox"] / "DSC1.JPG"
    p.write_bytes(b"\xff\xd8\xff" + b"x" * 100)
    settle.record(fresh_db, str(p), now=100.0)
    assert _settle(fresh_db, 100.0)[0] == []          # first sight: starts the clock
    with open(p, "ab") as f:
        f.write(b"more")                               # still being written
    os.utime(p, ns=(1, 2))
    assert _settle(fresh_db, 101.5)[0] == []          # changed: clock restarts
    assert _settle(fresh_db, 103.0)[0] == []          # 1.5 s stable
    ready, waiting, _ = _settle(fresh_db, 103.6)      # 2.1 s stable
    assert [r.path for r in ready] == [str(p)] and waiting == 0
    assert _photos(fresh_db) == [{"original_path": str(p), "pair_original_path": None, "kind": "jpeg", "state": "queued"}]
    assert fresh_db.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0


def test_an_empty_file_gets_a_longer_window_to_fill(fresh_db, folders):
    p = folders["inbox"] / "DSC2.ARW"
    p.touch()
    settle.record(fresh_db, str(p), now=0.0)
    _settle(fresh_db, 0.0)
    assert _settle(fresh_db, 3.0)[0] == []
    assert [r.path for r in _settle(fresh_db, 5.5)[0]] == [str(p)]


def test_a_raw_and_jpeg_with_one_stem_become_one_photo_with_the_raw_as_original(fresh_db, folders):
    raw = copy_fixture("two_people.ARW", folders["inbox"], "DSC00008.ARW")
    jpg = copy_fixture("ivan.jpg", folders["inbox"], "DSC00008.JPG")
    for p in (jpg, raw):
        settle.record(fresh_db, str(p), now=0.0)
    _settle(fresh_db, 0.0)
    _settle(fresh_db, 3.0)
    assert _photos(fresh_db) == [{"original_path": str(raw), "pair_original_path": str(jpg),
                                  "kind": "raw", "state": "queued"}]


def test_a_ready_jpeg_waits_for_its_raw_that_is_still_being_written(fresh_db, folders):
    raw = copy_fixture("two_people.ARW", folders["inbox"], "DSC3.ARW")
    jpg = copy_fixture("ivan.jpg", folders["inbox"], "DSC3.JPG")
    settle.record(fresh_db, str(jpg), now=0.0)
    settle.record(fresh_db, str(raw), now=0.0)
    _settle(fresh_db, 0.0)
    with open(raw, "ab") as f:
        f.write(b"\0")
    _settle(fresh_db, 2.5)                      # the JPEG is ready, the raw is not
    assert _photos(fresh_db) == []
    _settle(fresh_db, 5.0)
    assert len(_photos(fresh_db)) == 1 and _photos(fresh_db)[0]["pair_original_path"] == str(jpg)


def test_two_jpegs_and_one_raw_with_one_stem_are_not_paired(fresh_db, folders):
    inbox = folders["inbox"]
    paths = [copy_fixture("two_people.ARW", inbox, "A.ARW"), copy_fixture("ivan.jpg", inbox, "A.JPG"),
             copy_fixture("ivan.jpg", inbox, "A.jpeg")]
    for p in paths:
        settle.record(fresh_db, str(p), now=0.0)
    _settle(fresh_db, 0.0)
    _settle(fresh_db, 3.0)
    assert sorted(r["original_path"] for r in _photos(fresh_db)) == sorted(map(str, paths))
    assert all(r["pair_original_path"] is None for r in _photos(fresh_db))


def test_a_sidecar_next_to_its_photo_is_left_for_filing_and_a_lone_one_is_quarantined(fresh_db, folders):
    inbox = folders["inbox"]
    raw = copy_fixture("two_people.ARW", inbox, "B.ARW")
    side = inbox / "B.xmp"
    side.write_text("<x/>")
    lone = inbox / "C.xmp"
    lone.write_text("<x/>")
    for p in (raw, side, lone):
        settle.record(fresh_db, str(p), now=0.0)
    _settle(fresh_db, 0.0)
    _, _, actions = _settle(fresh_db, 3.0)
    assert [r["original_path"] for r in _photos(fresh_db)] == [str(raw)]
    assert [(a["action"], a["path"]) for a in actions] == [("quarantine", str(lone))]
    assert fresh_db.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0


def test_a_file_that_vanishes_before_settling_is_forgotten(fresh_db, folders):
    p = folders["inbox"] / "gone.JPG"
    p.write_bytes(b"\xff\xd8\xff")
    settle.record(fresh_db, str(p), now=0.0)
    p.unlink()
    assert _settle(fresh_db, 5.0)[:2] == ([], 0)
    assert fresh_db.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0


def test_a_symlink_in_the_inbox_is_skipped_not_followed(fresh_db, folders):
    link = folders["inbox"] / "passwd.JPG"
    link.symlink_to("/etc/passwd")
    settle.record(fresh_db, str(link), now=0.0)
    assert _settle(fresh_db, 5.0)[0] == []
    assert _photos(fresh_db) == []


def test_repeated_events_for_one_file_queue_it_once(fresh_db, folders):
    p = copy_fixture("ivan.jpg", folders["inbox"])
    for _ in range(5):
        settle.record(fresh_db, str(p), now=0.0)
    _settle(fresh_db, 0.0)
    _settle(fresh_db, 3.0)
    settle.record(fresh_db, str(p), now=4.0)     # a late duplicate event
    _settle(fresh_db, 4.0)
    _settle(fresh_db, 7.0)
    assert len(_photos(fresh_db)) == 1


def test_in_copy_mode_a_rescan_does_not_queue_originals_already_filed(fresh_db, folders):
    p = copy_fixture("ivan.jpg", folders["inbox"])
    st = p.stat()
    fresh_db.execute("INSERT INTO seen (path, size, mtime_ns, photo_id) VALUES (?, ?, ?, 1)",
                     (str(p), st.st_size, st.st_mtime_ns))
    assert scan.rescan(fresh_db, [str(p)], copy_mode=True) == 0
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # edited since: new work
    assert scan.rescan(fresh_db, [str(p)], copy_mode=True) == 1


def test_a_rescan_costs_the_same_few_queries_however_many_files_it_finds(fresh_db, folders):
    def statements_for(n: int) -> int:
        paths = []
        for i in range(n):
            p = folders["inbox"] / f"n{n}" / f"DSC{i:05d}.JPG"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(b"\xff\xd8\xff" + bytes([i % 256]))
            paths.append(str(p))
            fresh_db.execute("INSERT INTO photos (original_path, kind, state, queued_at, updated_at)"
                             " VALUES (?, 'jpeg', 'done', 0, 0)", (str(p),))
            st = os.lstat(p)
            fresh_db.execute("INSERT INTO seen (path, size, mtime_ns, photo_id) VALUES (?, ?, ?, 1)",
                             (str(p), st.st_size, st.st_mtime_ns))
        issued = []
        fresh_db.conn.set_trace_callback(issued.append)
        try:
            assert scan.rescan(fresh_db, paths, copy_mode=True) == 0     # all filed: nothing new
        finally:
            fresh_db.conn.set_trace_callback(None)
        return len(issued)
    assert statements_for(20) == statements_for(400)


def test_a_file_already_older_than_settle_seconds_is_taken_at_the_second_look(fresh_db, folders):
    import time
    p = copy_fixture("ivan.jpg", folders["inbox"], "OLD.JPG")
    settle.record(fresh_db, str(p))
    now = time.time() + 2.5                               # its last write is 2.5 s old at the first look
    assert _settle(fresh_db, now)[0] == []                # first look: noted
    assert _photos(fresh_db) == []
    _settle(fresh_db, now + 0.2)                          # a moment later, unchanged: taken
    assert [os.path.basename(r["original_path"]) for r in _photos(fresh_db)] == ["OLD.JPG"]


def test_a_file_written_a_moment_ago_still_waits_the_whole_settle_window(fresh_db, folders):
    import time
    p = copy_fixture("ivan.jpg", folders["inbox"], "NEW.JPG")
    settle.record(fresh_db, str(p))
    now = time.time()
    _settle(fresh_db, now)
    _settle(fresh_db, now + 0.2)
    assert _photos(fresh_db) == []


def test_admitting_a_full_card_folder_lists_it_once_per_round_not_once_per_file(fresh_db, folders, monkeypatch):
    # A camera folder holds up to 9,999 files; a listing per file made admission quadratic.
    card = folders["inbox"] / "DCIM" / "100MSDCF"
    card.mkdir(parents=True)
    for i in range(300):
        (card / f"DSC{i:05d}.JPG").write_bytes(b"\xff\xd8\xff" + bytes([i % 256]))
    (card / "DSC00007.ARW").write_bytes(b"raw")
    ready = [settle.Ready(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(card.iterdir())]
    listed = []
    real_scandir = os.scandir

    def counting_scandir(path):
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    pairing.admit(fresh_db, ready, copy_mode=False, now=100.0)
    assert listed == [str(card)]
    got = _photos(fresh_db)
    assert len(got) == 300
    pair = [r for r in got if r["pair_original_path"]]
    assert [(os.path.basename(r["original_path"]), os.path.basename(r["pair_original_path"])) for r in pair] == [
        ("DSC00007.ARW", "DSC00007.JPG")]
