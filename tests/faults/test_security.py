"""Security: what the daemon
exposes, what it refuses, and that nothing a file carries can steer it.

One long-running daemon (real analysis) serves the tests that need it.
"""
from __future__ import annotations

import ast
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import DATA
from .checker import Originals, check
from .support import ROOT, record_result
from .test_hostile_input import HostileDaemon, tree_digest

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

PACKAGE = ROOT / "daemon" / "starsort"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = HostileDaemon(tmp_path_factory.mktemp("security") / "d", drop_dac=False, settle=0.3)
    d.start()
    try:
        # Workers are up once the service says so: their sockets count too.
        d.wait(lambda: "ready: 1 analysis worker(s)" in d.tail(10**6), timeout=120, what="the workers to start")
        yield d
    finally:
        d.close()


# ---- S1: no listening sockets -----------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, pending = [], [pid]
    while pending:
        p = pending.pop()
        out.append(p)
        pending += children.get(p, [])
    return out


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _inet_sockets(pid: int) -> list[tuple[str, str, str, int]]:
    """(table, local address hex, state hex, inode) for every TCP/UDP socket in pid's network namespace."""
    out = []
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            out.append((table, f[1], f[3], int(f[9])))
    return out


def _loopback(table: str, local: str) -> bool:
    addr = local.split(":")[0]
    if table.endswith("6"):
        return addr in ("00000000000000000000000001000000",                      # ::1
                        "0000000000000000FFFF00000100007F")                      # ::ffff:127.0.0.1
    return addr.endswith("7F")  # 127.x.x.x, stored little-endian


def _listening(pid: int) -> tuple[list[tuple[str, str, str, int]], set[int], list[int]]:
    """(listening inet sockets of pid and its children, every socket inode they hold, their pids)."""
    pids = _descendants(pid)
    inodes = {i for p in pids for i in _socket_inodes(p)}
    listening = [(t, a, st, i) for t, a, st, i in _inet_sockets(pid) if i in inodes
                 and ((t.startswith("tcp") and st == "0A") or t.startswith(("udp", "raw")))]
    return listening, inodes, pids


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc/<pid>/net")
def test_the_only_listening_socket_is_the_review_page_on_loopback_held_by_the_service(daemon):
    listening, inodes, pids = _listening(daemon.proc.pid)
    assert len(pids) >= 2, f"expected the service and at least one worker, found {pids}"
    [(port,)] = daemon.query("SELECT review_port FROM service")
    assert port, "the review page is on by default"
    exposed = [(t, a, st) for t, a, st, _ in listening if not _loopback(t, a)]
    assert not exposed, f"network sockets bound by starsort beyond loopback: {exposed}"
    assert {int(a.split(":")[1], 16) for _, a, _, _ in listening} == {port}
    assert {t for t, *_ in listening} <= {"tcp", "tcp6"}
    # Held by the service only: a worker decoding a hostile file holds no socket it could answer on.
    service_sockets = _socket_inodes(daemon.proc.pid)
    assert all(i in service_sockets for *_, i in listening)
    # The check can see the sockets it looks for: the service talks to its
    # workers over socketpairs, which must show up as unix sockets.
    unix = {int(line.split()[6]) for line in Path("/proc/net/unix").read_text().splitlines()[1:]}
    assert inodes and inodes <= unix | {i for *_, i in _inet_sockets(daemon.proc.pid)}, inodes
    listening_unix = [line for line in Path("/proc/net/unix").read_text().splitlines()[1:]
                      if int(line.split()[6]) in inodes and int(line.split()[3], 16) & 0x10000]
    assert not listening_unix, f"listening unix sockets: {listening_unix}"
    record_result("only the review page listens, on loopback", processes=len(pids), sockets=len(inodes),
                  listening=len(listening))


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc/<pid>/net")
def test_with_the_review_page_turned_off_nothing_listens_at_all(tmp_path):
    from ..daemon import Daemon
    d = Daemon(tmp_path, analyser="tests.faults.doubles:serve")
    d.config.write_text(d.config.read_text().replace("review:\n", "review:\n  enabled: false\n"))
    d.start()
    try:
        d.wait(d.started, what="the service to start")
        d.wait(lambda: "ready: 1 analysis worker(s)" in d.tail(10**6), what="the worker")
        listening, inodes, _ = _listening(d.proc.pid)
        assert inodes and listening == []
    finally:
        d.close()


def test_the_socket_check_would_see_a_listening_socket():
    # The same helpers, on this test process with a socket it opens itself.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", 0))
    s.listen()
    try:
        mine = _socket_inodes(os.getpid())
        hits = [(t, a, st) for t, a, st, i in _inet_sockets(os.getpid()) if i in mine and st == "0A"]
        assert hits and not _loopback(hits[0][0], hits[0][1])
    finally:
        s.close()


# ---- S4: root is warned about ---------------------------------------------------------------

def test_running_as_root_is_warned_about_in_status_and_the_log(daemon):
    r = daemon.cli("status")
    assert r.returncode == 0, r.stderr
    if os.geteuid() == 0:
        assert "WARNING: the service runs as root" in r.stdout, r.stdout
        assert "starsort is running as root" in daemon.tail(10**6)
        assert daemon.status()["warnings"] == ["the service runs as root; run it as the photographer's user"]
    else:
        # Not root here: the warning must then be absent, not always printed.
        assert "root" not in r.stdout, r.stdout


# ---- S3: overlapping folders are refused ----------------------------------------------------

@pytest.mark.parametrize("layout, key", [("library_in_inbox", "library"), ("inbox_in_library", "inboxes[0]")])
def test_overlapping_inbox_and_library_are_refused_naming_the_key(tmp_path, layout, key):
    inbox, library = (tmp_path / "in", tmp_path / "in" / "lib") if layout == "library_in_inbox" else \
        (tmp_path / "lib" / "in", tmp_path / "lib")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"inboxes: [{inbox}]\nlibrary: {library}\ndatabase: {tmp_path / 'db' / 's.db'}\n")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    r = subprocess.run([sys.executable, "-m", "starsort", "run", "--once", "--config", str(cfg)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert any(f"{cfg}: {key}: " in ln and "inside" in ln for ln in lines), r.stderr
    assert not (tmp_path / "db").exists(), "nothing may be created for a refused config"


# ---- S6: no shell, no programs run with file names --------------------------------------------

FORBIDDEN_CALLS = {
    ("os", "system"), ("os", "popen"), ("os", "posix_spawn"), ("os", "posix_spawnp"),
    *(("os", f"exec{s}") for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    *(("os", f"spawn{s}") for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    ("pty", "spawn"), ("builtins", "eval"), ("builtins", "exec"),
}
FORBIDDEN_MODULES = {"subprocess", "commands", "pty", "shlex"}


def shell_uses(source: str, filename: str = "<src>") -> list[str]:
    """Every way `source` could run a program or a shell, as 'file:line what'."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{where} from {node.module} import ...")
            if node.module == "os":
                found += [f"{where} from os import {a.name}" for a in node.names
                          if ("os", a.name) in FORBIDDEN_CALLS]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in FORBIDDEN_CALLS:
                found.append(f"{where} {f.value.id}.{f.attr}()")
            if isinstance(f, ast.Name) and ("builtins", f.id) in FORBIDDEN_CALLS:
                found.append(f"{where} {f.id}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{where} shell={ast.unparse(kw.value)}")
    return found


def test_the_daemon_runs_no_shell_and_no_program_at_all():
    # The only child processes are the analysis workers, which multiprocessing
    # starts with a fixed argv (python -c 'from multiprocessing.spawn ...');
    # a photo's path reaches them over a pipe, never on a command line.
    # The tray is not the daemon: a process of the photographer's desktop session, which opens
    # the library and inbox folders with the desktop's handler (xdg-open, a fixed argv) when asked.
    sources = sorted(p for p in PACKAGE.rglob("*.py") if p.parent.name != "tray")
    assert len(sources) >= 15
    found = [hit for p in sources for hit in shell_uses(p.read_text(), str(p.relative_to(PACKAGE)))]
    assert found == [], found
    tray = [hit for p in sorted((PACKAGE / "tray").glob("*.py"))
            for hit in shell_uses(p.read_text(), str(p.relative_to(PACKAGE)))]
    assert tray and not [h for h in tray if "shell=" in h or "os.system" in h or "os.popen" in h], tray


def test_the_shell_scan_finds_what_it_looks_for():
    bad = ("import subprocess\nfrom os import system\nimport os\n"
           "os.system('ls ' + name)\nos.popen(name)\nos.execvp('dcraw', [name])\n"
           "run(cmd, shell=True)\neval(text)\n")
    hits = shell_uses(bad)
    assert len(hits) == 7, hits
    assert shell_uses("run(['x', '--', name], shell=False)\n") == []


# ---- B13: names from EXIF never steer a path ------------------------------------------------------

def hostile_exif_jpeg() -> bytes:
    from PIL import Image
    im = Image.open(DATA / "ivan.jpg")
    exif = Image.Exif()
    exif[0x010F] = "../../../../EVILMAKE/" + "/etc/passwd"                       # Make
    exif[0x0110] = "../../EVILMODEL\x01\x02\x1b[31m/" + "M" * 10_240              # Model, 10 KB
    exif[0x0132] = "../../2024:01:01 00:00:00/EVILDATE"                          # DateTime
    exif[0x010E] = "/tmp/EVILDESC\x00hidden"                                     # ImageDescription
    exif.get_ifd(0x8769)[0x9003] = "../../../EVILDTO\x00"                        # DateTimeOriginal
    b = io.BytesIO()
    im.save(b, "JPEG", quality=92, exif=exif.tobytes())
    return b.getvalue()


def test_exif_strings_never_steer_a_path_out_of_the_library(daemon):
    root = daemon.root.parent
    data = hostile_exif_jpeg()
    assert b"EVILMODEL" in data and len(data) > 10_240
    before = tree_digest(root)
    tmp_before = set(os.listdir("/tmp"))
    src = daemon.inbox / "DSC01234.JPG"
    tmp = daemon.inbox / ".DSC01234.JPG.part"
    tmp.write_bytes(data)
    os.rename(tmp, src)
    originals = Originals.snapshot([src])
    daemon.wait(lambda: daemon.query("SELECT state FROM photos WHERE original_path = ?", (str(src),))
                in ([("done",)], [("quarantined",)]), timeout=120, what="the photo with hostile EXIF")
    [row] = [r for r in daemon.report() if r["original_path"] == str(src)]
    assert row["state"] == "done", row
    filed = os.path.realpath(row["current_path"])
    library = os.path.realpath(daemon.library)
    assert os.path.commonpath([filed, library]) == library
    assert os.path.basename(filed) == "DSC01234.JPG"                 # named from the file, not its EXIF
    assert "EVIL" not in filed
    # The EXIF was read (so the hostile strings did reach the daemon), and kept as data.
    assert row["camera_model"].startswith("../../EVILMODEL"), row["camera_model"][:80]
    # Nothing appeared outside the library, the database folder and the daemon's own log.
    after = tree_digest(root)
    previews = str(daemon.root / "previews")
    allowed = (str(daemon.library) + os.sep, str(daemon.db.parent) + os.sep, str(daemon.logfile),
               str(daemon.inbox) + os.sep, previews)
    new = [p for p in after if p not in before and not p.startswith(allowed)]
    assert new == [], new
    # The review page's preview cache names files by a hash, never by anything the file carries.
    cached = [p[len(previews) + 1:] for p in after if p.startswith(previews + os.sep)]
    assert cached and all(re.fullmatch(r"[0-9a-f]{2}(/[0-9a-f]{24}-(s|l|full)\.jpg)?", c) for c in cached), cached
    assert not [p for p in after if "EVIL" in p]
    assert not [n for n in set(os.listdir("/tmp")) - tmp_before if "EVIL" in n]
    assert daemon.proc.poll() is None
    check(originals, daemon.inbox, daemon.library, daemon.db, proc=daemon.proc)
