"""`starsort sort` on Dask against the local pool, on one folder, and the coordinator's ceiling.

    .venv/bin/python bench/bench_dask.py [--photos N]

Runs, on the same folder of portraits (the face photos of ../shared/data, else
tests/data, each re-encoded so every file is a different photo), each in a
fresh library:

* the local pool with 1 worker (`starsort sort`, workers: 1);
* a Dask cluster with 1 worker, then with 2 (`dask scheduler` and `dask worker
  --nthreads 1` on 127.0.0.1, the real engine);

photos per second counted from the first photo filed to the last (so start-up,
which differs, is left out). Then the coordinator's own ceiling: 2,000 small
JPEGs in one card folder through a 2-worker cluster whose workers answer with an analysis double
at once (STARSORT_CLUSTER_DOUBLE=0): everything the coordinator does per photo
(the queue, storing, bursts, filing with its journal and fsyncs, XMP), nothing
of the analysis. From those: the coordinator's overhead per photo, and the time
a million photos would take on 10 machines like this one. Appends to
bench/dask-results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DASK = str(Path(PY).parent / "dask")
RESULTS = ROOT / "bench" / "dask-results.md"
SHARED = ROOT.parent / "shared" / "data" / "faces"


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "daemon")}


class Cluster:
    def __init__(self, folder: Path, workers: int):
        self.file = folder / f"scheduler-{workers}.json"
        self.scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                           "--scheduler-file", str(self.file)], env=env(),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not self.file.exists():
            time.sleep(0.1)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = subprocess.Popen([DASK, "worker", "--scheduler-file", str(self.file), "--nworkers", str(workers),
                                         "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env(),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)

    def close(self) -> None:
        for p in (self.workers, self.scheduler):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def portraits(dst: Path, n: int) -> int:
    from PIL import Image
    src = sorted(p for p in (SHARED if SHARED.is_dir() else ROOT / "tests" / "data").rglob("*.jp*g"))
    made = 0
    for i in range(n):
        p = src[i % len(src)]
        try:
            with Image.open(p) as im:
                im.convert("RGB").save(dst / f"P{i:05d}.jpg", quality=90 - (i // len(src)))
            made += 1
        except OSError:
            continue
    return made


def small(dst: Path, n: int) -> None:
    """n small JPEGs, each a different picture (a different byte pattern in its corner).

    Each a different size too (a comment of a different length): real photos
    almost never share a byte count, and a shared one makes starsort hash the
    file to rule out a card imported twice. Noise JPEGs of one size would
    measure that check on every photo.
    """
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        px = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
        Image.fromarray(px).save(dst / f"S{i:05d}.jpg", quality=90, comment=b"x" * (7 * i + 1))


def sort(folder: Path, work: Path, scheduler: str | None = None, extra_env: dict | None = None,
         workers: int = 1, in_flight: int | None = None) -> dict:
    """Photos filed; photos/s from the first filed to the last, and over the first and the
    last fifth of them; the wall time of the whole command (start-up and admission too), and
    its processor time per photo."""
    work.mkdir(parents=True)
    cfg = work / "config.yaml"
    cfg.write_text(f"library: {work / 'library'}\ndatabase: {work / 'state.db'}\nworkers: {workers}\n"
                   "review:\n  enabled: false\n"
                   + (f"sort:\n  max_in_flight: {in_flight}\n" if in_flight else ""))
    cmd = [PY, "-m", "starsort", "sort", str(folder), "--config", str(cfg)]
    if scheduler:
        cmd += ["--scheduler", scheduler]
    t0 = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, env={**env(), **(extra_env or {})}, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - t0
    # The coordinator's own processor time (the sort command, its writer thread and Dask client included).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    db = sqlite3.connect(work / "state.db")
    t = [r[0] for r in db.execute("SELECT updated_at FROM photos WHERE state = 'done' ORDER BY updated_at")]
    db.close()

    def rate(ts: list[float]) -> float:
        return (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0
    k = max(2, len(t) // 5)
    return {"n": len(t), "rate": rate(t), "first": rate(t[:k]), "last": rate(t[-k:]), "wall": wall,
            "cpu_ms": 1000 * cpu / max(1, len(t))}


# A full camera folder is 9,999 files; 2,000 shows whether the cost of a photo grows
# with the folder it is in (it did: a listing of the folder per photo) in a minute.
CEILING_PHOTOS = 2000


def ceiling(root: Path) -> dict:
    """The coordinator alone: workers that answer with an analysis double at once, many in flight."""
    card = root / "tiny" / "DCIM" / "100MSDCF"
    card.mkdir(parents=True)
    small(card, CEILING_PHOTOS)
    c = Cluster(root, 2)
    try:
        return sort(root / "tiny", root / "ceiling", scheduler=c.address,
                    extra_env={"STARSORT_CLUSTER_DOUBLE": "0"}, in_flight=64)
    finally:
        c.close()


def copy_of(folder: Path, dst: Path) -> Path:
    shutil.copytree(folder, dst)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--ceiling-only", action="store_true", help="Only the coordinator's ceiling.")
    args = ap.parse_args()
    if args.ceiling_only:
        print(ceiling(Path(tempfile.mkdtemp(prefix="starsort-dask-"))))
        return
    root = Path(tempfile.mkdtemp(prefix="starsort-dask-"))
    base = root / "portraits"
    base.mkdir()
    n = portraits(base, args.photos)
    rows = []
    r = sort(copy_of(base, root / "a"), root / "local1", workers=1)
    rows.append(("local pool, 1 worker", r["n"], r["rate"]))
    for w in (1, 2):
        c = Cluster(root, w)
        try:
            r = sort(copy_of(base, root / f"c{w}"), root / f"dask{w}", scheduler=c.address)
        finally:
            c.close()
        rows.append((f"Dask cluster, {w} worker{'s' if w > 1 else ''}", r["n"], r["rate"]))
    top = ceiling(root)
    per_worker = rows[1][2]
    per_machine = rows[2][2]
    machines = 10
    cluster_rate = min(machines * per_machine, top["rate"])
    lines = [f"## {date.today().isoformat()} ({os.cpu_count()} cores, {n} portraits)", "",
             "| run | photos filed | photos/s |", "|---|---|---|"]
    lines += [f"| {name} | {g} | {r:.2f} |" for name, g, r in rows]
    lines += [f"| coordinator alone (analysis double on 2 workers, {CEILING_PHOTOS} small JPEGs in one card"
              f" folder) | {top['n']} | {top['rate']:.0f} |", "",
              f"- Coordinator overhead: {1000 / top['rate']:.1f} ms a photo (store, bursts, filing with fsync, XMP);"
              f" target: at least 200 photos/s. Over the first fifth of the folder {top['first']:.0f} photos/s,"
              f" over the last {top['last']:.0f}; the whole command, start-up and admission included,"
              f" {top['wall']:.0f} s. The sort process's own processor time: {top['cpu_ms']:.1f} ms a photo"
              f" (start-up included); on 2 cores it shares them with the scheduler and both workers.",
              f"- One Dask worker: {per_worker:.2f} photos/s; this machine with 2: {per_machine:.2f}"
              f" ({per_machine / rows[0][2]:.2f}x the local pool's single worker).",
              f"- A million photos on {machines} machines like this one: min({machines} x {per_machine:.2f},"
              f" {top['rate']:.0f}) = {cluster_rate:.1f} photos/s, {1e6 / cluster_rate / 3600:.1f} hours"
              f" (one machine: {1e6 / per_machine / 3600:.1f} hours). The coordinator stops being the"
              f" limit only past {top['rate'] / per_machine:.0f} machines.", ""]
    text = "\n".join(lines)
    print(text)
    new = not RESULTS.exists()
    with open(RESULTS, "a") as f:
        if new:
            f.write("# starsort sort on Dask (bench/bench_dask.py)\n\n")
        f.write(text + "\n")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
