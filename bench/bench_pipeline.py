"""End-to-end throughput and memory: `starsort run --once` over a folder of real photos.

Reads ../shared/data when present (else tests/data), copies every photo into a
fresh inbox, runs the daemon once, and prints wall time, photos per second,
the median per-photo analysis time from the service log, and the peak memory
(RSS summed over the service and its workers, sampled every 100 ms). Then it
checks the ratings the issues promise on that data.

    .venv/bin/python bench/bench_pipeline.py [--workers N] [--data DIR]
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PHOTO = re.compile(r"\.(jpe?g|arw|crw|cr2|nef|dng|kdc|gpr)$", re.I)


def tree_rss(pid: int) -> int:
    """RSS in bytes of pid and all its descendants."""
    total = 0
    children = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(p.name))
        except (OSError, ValueError, IndexError):
            continue
    todo = [pid]
    while todo:
        q = todo.pop()
        todo += children.get(q, [])
        try:
            for line in Path(f"/proc/{q}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--data", type=Path, default=SHARED if SHARED.exists() else ROOT / "tests" / "data")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="starsort-bench-"))
    inbox, library = tmp / "inbox", tmp / "library"
    n = 0
    for p in sorted(args.data.rglob("*")):
        if p.is_file() and PHOTO.search(p.name):
            rel = p.relative_to(args.data)
            dst = inbox / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst)
            n += 1
    cfg = tmp / "config.yaml"
    cfg.write_text(f"inboxes: [{inbox}]\nlibrary: {library}\ndatabase: {tmp}/db/starsort.db\n"
                   f"settle_seconds: 0.5\nworkers: {args.workers}\n")
    env = {**os.environ, "HOME": str(tmp)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "starsort", "run", "--once", "--config", str(cfg)],
                            env=env, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    t.join()
    if proc.returncode != 0:
        print(err[-3000:])
        raise SystemExit(proc.returncode)
    per_photo = [float(x) for x in re.findall(r"stars \(.*?\) in ([0-9.]+)s", err)]
    ready = re.search(r"(\d\d:\d\d:\d\d),\d+ INFO .*ready:", err)
    print(f"data: {args.data}  photos copied: {n}  workers: {args.workers}")
    print(f"wall time: {wall:.1f}s for {n} files = {n / wall:.2f} files/s (includes ~worker start-up)")
    if per_photo:
        print(f"analysis per photo (in worker): median {statistics.median(per_photo) * 1000:.0f} ms, "
              f"p90 {sorted(per_photo)[int(len(per_photo) * 0.9) - 1] * 1000:.0f} ms, n={len(per_photo)}")
    print(f"peak RSS (service + workers): {peak / 2**20:.0f} MiB")
    rep = subprocess.run([sys.executable, "-m", "starsort", "report", "--config", str(cfg)], env=env,
                         capture_output=True, text=True, check=True).stdout
    rows = {Path(r["original_path"]).name: r for r in csv.DictReader(io.StringIO(rep))}
    states: dict[str, int] = {}
    for r in rows.values():
        states[r["state"]] = states.get(r["state"], 0) + 1
    print("states:", states)

    def stars(name: str) -> int:
        return int(rows[name]["stars"] or 0) if name in rows else -1

    checks = []
    if "two_people.ARW" in rows and "two_people_defocus.ARW" in rows:
        checks.append(("two_people.ARW > two_people_defocus.ARW", stars("two_people.ARW") > stars("two_people_defocus.ARW"),
                       f"{stars('two_people.ARW')} vs {stars('two_people_defocus.ARW')}"))
    s, f, m = "106_NIKON-D3400-35MM_S.JPG", "106_NIKON-D3400-35MM_F.JPG", "106_NIKON-D3400-35MM_M.JPG"
    if s in rows:
        checks.append(("blur 106: S > F and S > M", stars(s) > stars(f) and stars(s) > stars(m),
                       f"S {stars(s)}, F {stars(f)}, M {stars(m)}"))
    burst = [f"SonySLT-A55__DSC375{i}.JPG" for i in (5, 6, 7)]
    if all(b in rows for b in burst):
        ids = {rows[b]["cluster_id"] for b in burst}
        checks.append(("A55 burst shares one cluster", len(ids) == 1, str(ids)))
        others = [r for k, r in rows.items() if k not in burst and r["cluster_id"]]
        shared = [k for k, r in rows.items() if k not in burst and r["cluster_id"] in ids]
        checks.append(("no other photo in the burst's cluster", not shared, str(shared[:5])))
    if "lennon_rotated.ARW" in rows:
        checks.append(("lennon_rotated.ARW face found", int(rows["lennon_rotated.ARW"]["faces"] or 0) >= 1,
                       rows["lennon_rotated.ARW"]["faces"]))
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
