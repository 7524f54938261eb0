"""The service's own CPU as the library grows: near-identical frames, and an idle rescan.

A product shoot or a tripod time-lapse gives hundreds of frames of one pHash
inside one capture window, in many card folders; in copy mode the originals
stay in the inbox and are rescanned every `rescan_interval`. Both used to
cost the service work in proportion to the library. This runs `starsort run`
in copy mode over N such frames, with an analysis double (bench_analyser.py:
one pHash with a bit or two flipped, a capture time a tenth of a second
apart) so that only the service's work is measured, and reads the service
process's own CPU time (not its worker's) from /proc:

  * CPU seconds per photo while N photos are filed (default rescan_interval);
  * CPU seconds per rescan of the N filed photos once idle (a second run on
    the same library, rescanning every 2 s).

    .venv/bin/python bench/bench_service.py                  # 1,000 and 20,000
    .venv/bin/python bench/bench_service.py --sizes 1000 5000 --source /path/to/other/daemon

Exits 1 if the per-photo cost at the largest size is more than twice the
smallest's (it should be flat).
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def make_inbox(inbox: Path, n: int, folders: int = 200) -> None:
    for i in range(n):
        folder = inbox / f"{100 + i % folders}MSDCF"
        folder.mkdir(parents=True, exist_ok=True)
        # Enough of a JPEG for the magic-byte check; the analysis double never decodes it.
        (folder / f"DSC{i:05d}.JPG").write_bytes(b"\xff\xd8\xff\xe0" + i.to_bytes(4, "big") * 16 + b"\xff\xd9")


def count(db: Path, sql: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _start(source: Path, config: Path, work: Path, log_name: str) -> tuple[subprocess.Popen, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(ROOT / "bench")]),
           "STARSORT_TEST_ANALYSER": "bench_analyser:serve", "HOME": str(work)}
    log = open(work / log_name, "w")
    proc = subprocess.Popen([sys.executable, "-m", "starsort", "run", "--config", str(config)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def _config(work: Path, rescan_interval: float) -> Path:
    config = work / f"config-{rescan_interval:g}.yaml"
    config.write_text(f"inboxes: [{work / 'inbox'}]\nlibrary: {work / 'library'}\n"
                      f"database: {work / 'state' / 'starsort.db'}\nmode: copy\nsettle_seconds: 0\n"
                      f"rescan_interval: {rescan_interval}\nworkers: 1\nxmp:\n  enabled: false\n")
    return config


def run(n: int, source: Path, rescans: int, rescan_interval: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="starsort-bench-service-") as tmp:
        work = Path(tmp)
        db = work / "state" / "starsort.db"
        make_inbox(work / "inbox", n)
        # Filing, with the default rescan interval, as a service runs.
        proc, log = _start(source, _config(work, 60.0), work, "filing.log")
        t0 = time.perf_counter()
        try:
            while count(db, "SELECT count(*) FROM photos WHERE state = 'done'") < n:
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited: {(work / 'filing.log').read_text()[-2000:]}")
                time.sleep(0.5)
            filed_s = time.perf_counter() - t0
            filing_cpu = cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()
        # Idle: the same library, nothing new, rescanned every rescan_interval.
        proc, log = _start(source, _config(work, rescan_interval), work, "idle.log")
        try:
            time.sleep(2 * rescan_interval + 2)          # start-up and its own scans are done
            idle0 = cpu_seconds(proc.pid)
            time.sleep(rescans * rescan_interval)
            idle_cpu = cpu_seconds(proc.pid) - idle0
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()
    return {"n": n, "filed_seconds": filed_s, "cpu_per_photo_ms": 1000 * filing_cpu / n,
            "photos_per_s": n / filed_s, "cpu_per_rescan_ms": 1000 * idle_cpu / rescans}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    ap.add_argument("--source", type=Path, default=ROOT / "daemon", help="The daemon/ folder to run.")
    ap.add_argument("--rescans", type=int, default=5)
    ap.add_argument("--rescan-interval", type=float, default=2.0)
    args = ap.parse_args()
    results = [run(n, args.source, args.rescans, args.rescan_interval) for n in args.sizes]
    print(f"service CPU (its own process, analysis double), copy mode, near-identical frames; {args.source}")
    print("| photos | filed in | photos/s | service CPU per photo | service CPU per idle rescan |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['n']:,} | {r['filed_seconds']:.0f} s | {r['photos_per_s']:.1f} | {r['cpu_per_photo_ms']:.1f} ms"
              f" | {r['cpu_per_rescan_ms']:.0f} ms |")
    small, large = results[0], results[-1]
    ratio = large["cpu_per_photo_ms"] / small["cpu_per_photo_ms"]
    print(f"per-photo CPU at {large['n']:,} / at {small['n']:,}: {ratio:.2f}x"
          f" (idle rescan: {large['cpu_per_rescan_ms'] / max(small['cpu_per_rescan_ms'], 1e-9):.1f}x for"
          f" {large['n'] / small['n']:.0f}x the files)")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
