"""Hostile input: the real daemon and the real
MTCNN pipeline, one inbox holding every kind of bad file next to good photos.

What each kind of input must come to is written once, in `hostile_inbox()`:
a bad file is quarantined with a reason that says what is wrong with it; an
unreadable one is left where it is and reported; symlinks and FIFOs are never
opened, followed or moved; the good photos around them are filed; and the
checker (no photo lost, duplicated or corrupted) passes at the end.

One daemon run covers the whole set, because starting torch costs seconds
and the machine running the tests is small.
"""
from __future__ import annotations

import ctypes
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..helpers import DATA, sha256
from .checker import Originals, check
from .support import ROOT, Daemon, record_result

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

LIMIT = 250_000_000          # analysis.max_image_pixels, the default


# ---- inputs ---------------------------------------------------------------------

def solid_jpeg(width: int, height: int) -> bytes:
    """A valid baseline greyscale JPEG of width x height, every 8x8 block flat grey.

    With the standard Huffman tables a flat block is 6 bits (DC difference 0,
    then end-of-block), so 576 MP take 6.75 MB on disk and about 10 ms to
    build: a real decompression bomb, which libjpeg would happily decode.
    """
    assert width % 32 == 0 and height % 8 == 0
    from PIL import Image
    b = io.BytesIO()
    Image.new("L", (16, 16), 128).save(b, "JPEG", quality=90)
    src = b.getvalue()
    out, pos = bytearray(src[:2]), 2
    while True:
        marker = src[pos + 1]
        seg = bytearray(src[pos:pos + 2 + int.from_bytes(src[pos + 2:pos + 4], "big")])
        if marker == 0xC0:                      # SOF0: precision, height, width
            seg[5:7] = height.to_bytes(2, "big")
            seg[7:9] = width.to_bytes(2, "big")
        out += seg
        pos += len(seg)
        if marker == 0xDA:                      # SOS: the entropy-coded data follows
            break
    # "00" (DC category 0) + "1010" (EOB), four blocks to three bytes.
    out += b"\x28\xa2\x8a" * ((width // 8) * (height // 8) // 4)
    return bytes(out + b"\xff\xd9")


def big_jpeg(width: int = 9504, height: int = 6336) -> bytes:
    """A 61 MP frame (a Sony A7R IV's size) with a face in it, as a camera JPEG would be."""
    from PIL import Image
    im = Image.open(DATA / "ivan.jpg").convert("RGB").resize((width // 8, height // 8), Image.BILINEAR)
    b = io.BytesIO()
    im.resize((width, height), Image.BILINEAR).save(b, "JPEG", quality=85)
    return b.getvalue()


def png_bytes() -> bytes:
    from PIL import Image
    b = io.BytesIO()
    Image.open(DATA / "ivan.jpg").save(b, "PNG")
    return b.getvalue()


def random_bytes(n: int, seed: int = 4) -> bytes:
    import random
    data = random.Random(seed).randbytes(n)
    return b"\x13\x37" + data[2:]   # never a magic number by chance


@dataclass
class Case:
    rel: str                   # path under the inbox
    expect: str                # done | quarantined | left | skipped
    reason: str = ""           # regex the recorded reason must match (quarantined, left)
    note: str = ""             # what it shows, for the table in the notes
    kind: str | None = None    # the kind the report must show (done)


NAME_MAX = 255
LONG_ASCII = "L" * (NAME_MAX - 4) + ".JPG"                       # 255 bytes
LONG_UTF8 = "ü" * ((NAME_MAX - 5) // 2) + "x.JPG"                # 255 bytes, 2-byte characters
assert len(LONG_ASCII.encode()) == NAME_MAX and len(LONG_UTF8.encode()) == NAME_MAX
UE_NFC = unicodedata.normalize("NFC", "Grüße.JPG")
UE_NFD = unicodedata.normalize("NFD", "Grüße.JPG")
assert UE_NFC != UE_NFD


def hostile_inbox(inbox: Path, outside: Path) -> list[Case]:
    """Fill `inbox` with good photos and every kind of bad input; return what each must come to.

    `outside` is a folder next to the inbox that symlinks point into; nothing
    in it may be read, moved or changed.
    """
    cases: list[Case] = []

    def put(rel: str, data: bytes, case: Case) -> None:
        p = inbox / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        cases.append(case)

    jpeg = (DATA / "SonyDSC-P5_DSC00001.JPG").read_bytes()
    arw = (DATA / "two_people.ARW").read_bytes()
    small = (DATA / "clapton-2.jpg").read_bytes()

    # Good photos the bad ones must not disturb.
    put("ivan.jpg", (DATA / "ivan.jpg").read_bytes(), Case("ivan.jpg", "done", kind="jpeg"))
    put("DSC00001.ARW", arw, Case("DSC00001.ARW", "done", kind="raw"))
    put("big_61mp.JPG", big_jpeg(), Case("big_61mp.JPG", "done", kind="jpeg",
                                         note="9504x6336 (61 MP): below the limit, filed"))
    put("jpeg_named.ARW", (DATA / "kit_with_rose.jpg").read_bytes(),
        Case("jpeg_named.ARW", "done", kind="jpeg", note="judged by its bytes: analysed as a JPEG, name kept"))

    # B1: empty files.
    for n in ("empty_jpeg.JPG", "empty_raw.ARW"):   # distinct stems: not a RAW+JPEG pair
        put(n, b"", Case(n, "quarantined", r"^empty file \(0 bytes\)$"))
    # B2/B3: cut short at 10 %, 50 % and by one byte.
    for label, keep in (("10pct", 0.10), ("50pct", 0.50), ("1byte", None)):
        cut = len(jpeg) - 1 if keep is None else int(len(jpeg) * keep)
        put(f"cut_{label}.JPG", jpeg[:cut], Case(f"cut_{label}.JPG", "quarantined", r"(?i)truncated JPEG"))
        cut = len(arw) - 1 if keep is None else int(len(arw) * keep)
        put(f"arw_cut_{label}.ARW", arw[:cut],
            Case(f"arw_cut_{label}.ARW", "quarantined", r"^truncated or unreadable raw file \(LibRawIOError"))
    # B4: wrong types.
    put("noise.ARW", random_bytes(300_000),
        Case("noise.ARW", "quarantined", r"^not an image: its first bytes match no RAW format"))
    put("screenshot.JPG", png_bytes(),
        Case("screenshot.JPG", "quarantined", r"^not a photo: the file is a PNG, named \.JPG",
             note="a PNG is never analysed, whatever its name"))
    # B5: decompression bombs, above twice the limit (Pillow's error) and just above it (its warning).
    put("bomb_576mp.JPG", solid_jpeg(24000, 24000),
        Case("bomb_576mp.JPG", "quarantined", rf"^image too large: 576000000 pixels \(limit {LIMIT}\)$"))
    put("bomb_324mp.JPG", solid_jpeg(18016, 18000),
        Case("bomb_324mp.JPG", "quarantined", rf"^image too large: 324288000 pixels \(limit {LIMIT}\)$"))
    # B8: odd names, all good photos.
    for i, name in enumerate((UE_NFC, UE_NFD, "camera 📷 roll.JPG", "-rf --no-preserve-root.JPG",
                              "new\nline.JPG", "  two  spaces .JPG")):
        put(name, _tagged(small, f"name{i}"), Case(name, "done", kind="jpeg"))
    # 255-byte names, twice each in different folders: the second lands on a
    # taken name in the same star folder and needs a suffix that still fits.
    # Different bytes in each card: the same picture twice would be set aside as a copy.
    for folder in ("card_a", "card_b"):
        put(f"{folder}/{LONG_ASCII}", _tagged(small, folder), Case(f"{folder}/{LONG_ASCII}", "done", kind="jpeg"))
        put(f"{folder}/{LONG_UTF8}", _tagged(jpeg, folder), Case(f"{folder}/{LONG_UTF8}", "done", kind="jpeg"))

    # B7: unreadable file and folder.
    # Unreadable from the moment they appear, so a watching daemon never sees them readable.
    fd = os.open(inbox / "locked.JPG", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
    with os.fdopen(fd, "wb") as f:
        f.write(_tagged(small, "locked"))
    cases.append(Case("locked.JPG", "left", r"^permission denied",
                      note="left in place, reported; filed once readable"))
    hidden = inbox / ".locked_dir"          # hidden names are ignored until the rename
    hidden.mkdir()
    (hidden / "inside.JPG").write_bytes(_tagged(small, "locked dir"))
    hidden.chmod(0)
    os.rename(hidden, inbox / "locked_dir")
    cases.append(Case("locked_dir/inside.JPG", "skipped", note="unreadable folder: reported by the scan, left alone"))

    # B9: symlinks out of the inbox, and a loop.
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "target.JPG").write_bytes((DATA / "no-faces.jpg").read_bytes())
    (outside / "dir").mkdir(exist_ok=True)
    (outside / "dir" / "DSC09999.JPG").write_bytes(_tagged(small, "outside dir"))
    os.symlink(outside / "target.JPG", inbox / "link_to_file.JPG")
    os.symlink(outside / "dir", inbox / "link_to_dir")
    os.symlink(inbox / "loop_b.JPG", inbox / "loop_a.JPG")
    os.symlink(inbox / "loop_a.JPG", inbox / "loop_b.JPG")
    for n in ("link_to_file.JPG", "link_to_dir", "loop_a.JPG", "loop_b.JPG"):
        cases.append(Case(n, "skipped", note="symlink: never followed, never moved"))
    # B10: a FIFO with a photo's name; opening it would block forever.
    os.mkfifo(inbox / "fifo.JPG")
    cases.append(Case("fifo.JPG", "skipped", note="FIFO: never opened"))
    return cases


def _tagged(jpeg: bytes, tag: str) -> bytes:
    """The same JPEG with a comment segment, so each copy has its own bytes."""
    c = f"starsort hostile {tag}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(c) + 2).to_bytes(2, "big") + c + jpeg[2:]


def tree_digest(root: Path) -> dict[str, tuple]:
    """Every entry under root (no symlink followed): type, and content hash or link target."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(folder, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[p] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[p] = ("file", sha256(p), st.st_mtime_ns)
            else:
                out[p] = ("other", stat.S_IFMT(st.st_mode))
    return out


# ---- running the daemon without root's read-anything powers ------------------------

_DROP_DAC = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH\n"
    "    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP\n"
    "        sys.exit('cannot drop capability %d: %s' % (cap, os.strerror(ctypes.get_errno())))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def permissions_bite() -> str | None:
    """None if a mode-000 file is unreadable to the daemon we start; else why not.

    Root reads anything through CAP_DAC_OVERRIDE. Dropping it (and
    CAP_DAC_READ_SEARCH) from the bounding set before exec leaves a root
    daemon that permissions bind like anyone else, which is what a
    photographer's own user sees.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    probe = Path(f"/tmp/.starsort-perm-probe-{os.getpid()}")
    probe.write_text("x")
    probe.chmod(0)
    try:
        r = subprocess.run([sys.executable, "-c", _DROP_DAC, sys.executable, "-c", f"open({str(probe)!r}).read()"],
                           capture_output=True, text=True, timeout=30)
    finally:
        probe.unlink()
    if r.returncode == 0:
        return "running as root and the capabilities that let root read anything could not be dropped"
    if "PermissionError" not in r.stderr:
        return f"cannot drop root's DAC capabilities here: {r.stderr.strip()[-200:]}"
    return None


class HostileDaemon(Daemon):
    """The conftest daemon, with the real analysis, reports, and no DAC override when root."""

    def __init__(self, root: Path, drop_dac: bool, extra_config: str = "", **kw):
        super().__init__(root, analyser=None, **kw)
        self.drop_dac = drop_dac
        if extra_config:
            self.config.write_text(self.config.read_text() + extra_config)

    def _cmd(self, once: bool) -> list[str]:
        cmd = super()._cmd(once)
        if self.drop_dac:
            return [sys.executable, "-c", _DROP_DAC, *cmd]
        return cmd

    def report(self) -> list[dict]:
        return json.loads(self.cli("report", "--format", "json").stdout)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json").stdout)


def regular_originals(inbox: Path) -> list[Path]:
    """The regular files the checker can read now (not a non-root tester's mode-000 ones)."""
    out = []
    for folder, dirs, files in os.walk(inbox):
        for n in files:
            p = Path(folder) / n
            if stat.S_ISREG(os.lstat(p).st_mode) and os.access(p, os.R_OK):
                out.append(p)
    return out


LOCKED = ("locked.JPG", "locked_dir/inside.JPG")


def unlock(inbox: Path, originals: Originals) -> None:
    """Make the unreadable inputs readable, and count them as originals from now on."""
    (inbox / "locked_dir").chmod(0o755)
    for rel in LOCKED:
        p = inbox / rel
        if p.exists():      # not when the daemon could read it anyway (root, capabilities kept)
            p.chmod(0o644)
            originals.add(p)


# ---- the assertions shared by both runs ---------------------------------------------

def assert_outcomes(d: HostileDaemon, cases: list[Case], outside_before: dict, outside: Path,
                    perm_skip: str | None) -> dict[str, int]:
    rows = d.report()
    by_path = {r["original_path"]: r for r in rows}
    problems = []
    tally: dict[str, int] = {}
    for c in cases:
        src = str(d.inbox / c.rel)
        r = by_path.get(src)
        if c.rel in LOCKED and perm_skip:
            continue
        tally[c.expect] = tally.get(c.expect, 0) + 1
        if c.expect == "done":
            if not r or r["state"] != "done":
                problems.append(f"{c.rel!r}: expected filed, got {r and (r['state'], r['error'])}")
                continue
            cur = Path(r["current_path"])
            if not cur.is_file() or os.path.commonpath([cur, d.library]) != str(d.library):
                problems.append(f"{c.rel!r}: filed at {cur}, which is not a file in the library")
            if len(cur.name.encode()) > NAME_MAX:
                problems.append(f"{c.rel!r}: filed name is {len(cur.name.encode())} bytes")
            if c.kind and r["kind"] != c.kind:
                problems.append(f"{c.rel!r}: kind {r['kind']}, expected {c.kind}")
            if os.path.lexists(src):
                problems.append(f"{c.rel!r}: still in the inbox after it was filed")
        elif c.expect == "quarantined":
            if not r or r["state"] != "quarantined":
                problems.append(f"{c.rel!r}: expected quarantined, got {r and (r['state'], r['error'])}")
                continue
            if not re.search(c.reason, r["error"]):
                problems.append(f"{c.rel!r}: reason {r['error']!r} does not match {c.reason!r}")
            if Path(r["current_path"]).parent != d.library / "quarantine":
                problems.append(f"{c.rel!r}: quarantined at {r['current_path']}")
        elif c.expect == "left":
            if not os.path.lexists(src):
                problems.append(f"{c.rel!r}: should have been left in place, but is gone")
            if not r or r["state"] != "failed" or not re.search(c.reason, r["error"] or ""):
                problems.append(f"{c.rel!r}: expected failed with {c.reason!r}, got {r and (r['state'], r['error'])}")
        elif c.expect == "skipped":
            if not os.path.lexists(src):
                problems.append(f"{c.rel!r}: should never have been touched, but is gone")
            if r:
                problems.append(f"{c.rel!r}: should not be a photo, got {(r['state'], r['error'])}")
    # Nothing behind a symlink was read into the database, moved or changed.
    known = {r["original_path"] for r in rows} | {r["pair_path"] for r in rows}
    for p in known:
        if p and os.path.commonpath([p, outside]) == str(outside):
            problems.append(f"a file outside the inbox became a photo: {p}")
    if tree_digest(outside) != outside_before:
        problems.append("the folder the symlinks point into changed")
    for p in (d.library / "quarantine").iterdir():
        if p.is_symlink() or not p.is_file():
            problems.append(f"not a regular file in the quarantine: {p}")
    assert not problems, "\n".join(problems) + "\n" + d.tail()
    return tally


def assert_log_one_line_per_record(d: HostileDaemon) -> None:
    # A newline in a file name must not start a log line of its own: a log
    # reader (or an attacker naming files) could otherwise forge records.
    # (LibRaw writes its own lines to stderr, so the check is on the name.)
    text = d.logfile.read_text(errors="replace")
    orphans = [ln for ln in text.splitlines() if ln.startswith("line.JPG")]
    assert not orphans, f"a file name broke a log record in two: {orphans[:5]}"
    assert "new\\nline.JPG" in text, "the name with a newline should appear escaped in the log"
    for (message,) in d.query("SELECT message FROM events"):
        assert "\n" not in message, message


# ---- the tests -----------------------------------------------------------------------

def test_run_once_over_a_hostile_inbox_quarantines_each_bad_file_with_its_reason(tmp_path):
    perm_skip = permissions_bite()
    d = HostileDaemon(tmp_path / "d", drop_dac=os.geteuid() == 0 and perm_skip is None, settle=0.5)
    outside = tmp_path / "outside"
    cases = hostile_inbox(d.inbox, outside)
    outside_before = tree_digest(outside)
    originals = Originals.snapshot(regular_originals(d.inbox))

    t0 = time.monotonic()
    r = d.once(timeout=300)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, d.tail()

    tally = assert_outcomes(d, cases, outside_before, outside, perm_skip)
    assert_log_one_line_per_record(d)
    reasons = {r["original_path"][len(str(d.inbox)) + 1:]: r["error"] for r in d.report() if r["error"]}
    unlock(d.inbox, originals)      # before the checker, which may not be root
    check(originals, d.inbox, d.library, d.db)

    # Readable again: the next start files it (a failed photo gets a fresh chance).
    assert d.once(timeout=300).returncode == 0, d.tail()
    rows = {r["original_path"]: r for r in d.report()}
    assert rows[str(d.inbox / "locked.JPG")]["state"] == "done"
    assert rows[str(d.inbox / "locked_dir" / "inside.JPG")]["state"] == "done"
    check(originals, d.inbox, d.library, d.db, drained=True)
    record_result("hostile inbox, run --once", bad_inputs=sum(1 for c in cases if c.expect != "done"),
                  good=tally.get("done", 0), seconds=round(seconds, 1), permissions=perm_skip or "tested",
                  reasons=reasons)


def test_the_long_running_daemon_takes_a_hostile_inbox_live_and_keeps_running(tmp_path):
    perm_skip = permissions_bite()
    d = HostileDaemon(tmp_path / "d", drop_dac=os.geteuid() == 0 and perm_skip is None, settle=0.5, rescan=2.0)
    outside = tmp_path / "outside"
    d.start()
    try:
        d.wait(d.started, what="the service to start")
        # Written while it watches: the watcher, not only the scan, meets every input.
        cases = hostile_inbox(d.inbox, outside)
        originals = Originals.snapshot(regular_originals(d.inbox))
        settled = {str(d.inbox / c.rel): c for c in cases if c.expect in ("done", "quarantined")}
        locked = str(d.inbox / "locked.JPG")

        def finished() -> bool:
            states = dict(d.query("SELECT original_path, state FROM photos"))
            return all(states.get(p) == c.expect for p, c in settled.items())
        d.wait(finished, timeout=240, what="every good photo filed and every bad one quarantined")
        if not perm_skip:
            d.wait(lambda: d.query("SELECT state, error FROM photos WHERE original_path = ?", (locked,)) not in
                   ([], [("queued", None)]), what="the unreadable file to be reported")
            [(state, error)] = d.query("SELECT state, error FROM photos WHERE original_path = ?", (locked,))
            assert state == "queued" and error.startswith("permission denied"), (state, error)
            events = [m for (m,) in d.query("SELECT message FROM events WHERE level = 'ERROR'")]
            assert sum(f"cannot read {locked}: permission denied" in m for m in events) == 1, events
            assert os.path.exists(locked)

        # A photo that appears behind the directory symlink later is not taken either.
        (outside / "dir" / "DSC10000.JPG").write_bytes(_tagged((DATA / "ivan.jpg").read_bytes(), "late outside"))
        outside_before = tree_digest(outside)
        # Repaired permissions: filed at the next retry, with no restart.
        unlock(d.inbox, originals)
        for c in cases:
            if c.rel in LOCKED:
                c.expect = "done"
        repaired = [str(d.inbox / rel) for rel in LOCKED]
        d.wait(lambda: [s for (s,) in d.query("SELECT state FROM photos WHERE original_path IN (?, ?)",
                                              tuple(repaired))] == ["done", "done"],
               timeout=60, what="the repaired files to be filed")
        time.sleep(2.5)   # one more rescan: anything taken from behind a symlink would show now
        assert d.proc.poll() is None, d.tail()
        status = d.status()
        assert status["running"] and status["queue_depth"] == 0, status

        tally = assert_outcomes(d, cases, outside_before, outside, None)
        assert_log_one_line_per_record(d)
        d.proc.send_signal(signal.SIGTERM)
        check(originals, d.inbox, d.library, d.db, proc=d.proc, stopped=True, drained=True)
        record_result("hostile inbox, live daemon", bad_inputs=sum(1 for c in cases if c.expect != "done") + 2,
                      good=tally.get("done", 0), permissions=perm_skip or "tested")
    finally:
        d.close()


# ---- a decoder that crashes or hangs ------------------------------------------------

def faulty_serve(conn, config_json: str, torch_threads: int, *stages) -> None:
    """The real analysis worker, whose decoder segfaults on SEGV_* files and hangs on HANG_* ones.

    Named by STARSORT_TEST_ANALYSER, so it only ever runs in these tests.
    Everything else is the production worker: torch, MTCNN, the real decode.
    """
    from starsort.analysis import decode, worker
    real = decode.run

    def run(job, ctx) -> None:
        name = os.path.basename(job.path)
        if name.startswith("SEGV_"):
            ctypes.string_at(0)          # a NULL read in C, as a LibRaw bug would do
        if name.startswith("HANG_"):
            time.sleep(3600)             # a decoder stuck in a loop
        real(job, ctx)
    decode.run = run
    worker._serve(conn, config_json, torch_threads, *stages)


def test_a_decoder_that_segfaults_or_hangs_costs_one_photo_not_the_service(tmp_path):
    from starsort.service import CRASH_ATTEMPTS
    timeout = 5
    d = HostileDaemon(tmp_path / "d", drop_dac=False, settle=0.3,
                      extra_config=f"analysis:\n  timeout_seconds: {timeout}\n")
    d.env["STARSORT_TEST_ANALYSER"] = "tests.faults.test_hostile_input:faulty_serve"
    small = (DATA / "clapton-2.jpg").read_bytes()
    (d.inbox / "SEGV_0001.JPG").write_bytes(_tagged(small, "segv"))
    (d.inbox / "HANG_0002.JPG").write_bytes(_tagged(small, "hang"))
    for n in ("ivan.jpg", "kit_with_rose.jpg", "two_people.ARW"):
        shutil.copyfile(DATA / n, d.inbox / n)
    originals = Originals.snapshot(regular_originals(d.inbox))
    t0 = time.monotonic()
    r = d.once(timeout=300)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, d.tail()

    rows = {Path(r["original_path"]).name: r for r in d.report()}
    attempts = dict(d.query("SELECT original_path, attempts FROM photos"))
    segv, hang = rows["SEGV_0001.JPG"], rows["HANG_0002.JPG"]
    assert segv["state"] == "quarantined", segv
    assert segv["error"] == f"the decoder crashed (worker exit code -{signal.SIGSEGV.value})", segv["error"]
    assert hang["state"] == "quarantined", hang
    assert hang["error"] == f"analysis took longer than {timeout}s", hang["error"]
    for row in (segv, hang):
        assert attempts[row["original_path"]] == CRASH_ATTEMPTS
        assert Path(row["current_path"]).parent == d.library / "quarantine"
    for n in ("ivan.jpg", "kit_with_rose.jpg", "two_people.ARW"):
        assert rows[n]["state"] == "done", rows[n]
    check(originals, d.inbox, d.library, d.db, drained=True)
    record_result("decoder segfault and hang", attempts=CRASH_ATTEMPTS, seconds=round(seconds, 1))


# ---- the pieces the runs above rely on, each on its own ------------------------------

def test_the_type_check_never_blocks_on_a_fifo_nor_follows_a_symlink(tmp_path):
    # Settle checks lstat, but another process can put a FIFO or a symlink
    # under the name between settling and analysis; the service thread
    # sniffs the file itself and must neither hang nor read through a link.
    import threading

    from starsort.analysis import filetype
    fifo = tmp_path / "DSC00001.JPG"
    os.mkfifo(fifo)
    outcome: dict = {}

    def probe() -> None:
        try:
            outcome["kind"] = filetype.decode_kind(fifo)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            outcome["error"] = e
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))   # let the blocked open return
        pytest.fail("decode_kind blocked opening a FIFO")
    e = outcome.get("error")
    assert isinstance(e, OSError) and not isinstance(e, FileNotFoundError), outcome
    assert "not a regular file" in str(e)

    target = tmp_path / "outside.JPG"
    shutil.copyfile(DATA / "ivan.jpg", target)
    link = tmp_path / "DSC00002.JPG"
    os.symlink(target, link)
    with pytest.raises(OSError, match="symlink"):
        filetype.decode_kind(link)
    assert filetype.decode_kind(target) == "jpeg"


def test_a_group_with_a_255_byte_name_gets_a_suffix_that_fits(tmp_path):
    from starsort.library.names import Member, plan
    stem = "é" * 125 + "x"                                   # 251 bytes: IMG.ARW is 255
    members = [Member("primary", str(tmp_path / "in" / (stem + ".ARW"))),
               Member("sidecar", str(tmp_path / "in" / (stem + ".xmp")))]
    dest = tmp_path / "lib"
    dest.mkdir()
    for _ in range(12):       # IMG, IMG_2 ... IMG_12: the suffix grows, the stem shrinks
        dsts = plan(dest, members, set())
        got = [os.path.basename(p) for p in dsts.values()]
        assert all(len(n.encode()) <= NAME_MAX for n in got), [len(n.encode()) for n in got]
        stems = {n.rsplit(".", 1)[0] for n in got}
        assert len(stems) == 1, got                          # one stem for the whole group
        base = stems.pop()
        assert stem.startswith(base.rsplit("_", 1)[0] if base != stem else base)   # cut on a character
        for p in dsts.values():
            Path(p).write_bytes(b"")
    assert len(list(dest.iterdir())) == 24


def test_truncated_images_are_never_loaded_leniently():
    # Pillow's LOAD_TRUNCATED_IMAGES turns a cut-short JPEG into a grey-bottomed
    # "photo" that would be rated and filed.
    import ast
    import importlib
    import pkgutil

    from PIL import ImageFile

    import starsort
    for m in pkgutil.iter_modules(starsort.__path__):
        if m.name not in ("__main__",):
            importlib.import_module(f"starsort.{m.name}")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    for path in (ROOT / "daemon" / "starsort").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "LOAD_TRUNCATED_IMAGES":
                assert not isinstance(node.ctx, ast.Store), f"{path.name}:{node.lineno} sets LOAD_TRUNCATED_IMAGES"
