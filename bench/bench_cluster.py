"""Benchmark: burst-cluster lookup cost against library size.

Builds file databases with the real `starsort.store.migrations` schema holding N
synthetic photos (random pHashes; about 60 % of them in bursts of 2-12 frames
a second or two apart whose hashes differ by 0-8 bits; capture times spread
over three years), then times `cluster.assign` (lookup + writes + commit; WAL
with synchronous=NORMAL, as the service's writer has it: in the service assign runs
inside store()'s transaction) on new photos -- half continuing an existing burst,
half unrelated -- and, for comparison, two other lookups on the same photos:

* full scan: read every clustered photo, verify in Python (the naive way);
* window only: read every photo in the time window through `photos_captured`.

A last scenario packs many unrelated photos into one window (a batch whose
capture times fell back to nearly equal mtimes) to show why the time window
alone is not enough.

    .venv/bin/python bench/bench_cluster.py            # 10k, 100k, 1M
    .venv/bin/python bench/bench_cluster.py --no-1m    # skip the million

Runs in about 25 s (building the million-photo database takes about 14 s).
Figures from the development machine are in the docstring of
daemon/starsort/library/bursts.py.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlite_utils

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from starsort.analysis import signature  # noqa: E402
from starsort.library import bursts as cluster  # noqa: E402
from starsort.config import ClusterConfig  # noqa: E402
from starsort.store.migrations import migrations  # noqa: E402

CFG = ClusterConfig()
T_START = 1_600_000_000.0
SPAN = 3 * 365 * 86400.0
INSERT_SQL = (
    "INSERT INTO photos (original_path, kind, state, queued_at, updated_at, phash, b0, b1, b2, b3,"
    " captured_ts, sharpness, cluster_id, is_pick) VALUES (?, 'jpeg', ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def frame_signatures() -> tuple[bytes, bytes]:
    """Signatures of two real frames of one burst (the Sony A55 pair in tests/data), at the
    size the worker makes them: every burst of the synthetic library shows this scene, so the
    timed lookups pay for real verifications."""
    import cv2
    from PIL import Image
    data = Path(__file__).resolve().parents[1] / "tests" / "data"
    out = []
    for name in ("SonySLT-A55__DSC3755.JPG", "SonySLT-A55__DSC3756.JPG"):
        with Image.open(data / name) as im:
            im.draft("RGB", (1600, 1064))
            rgb = np.asarray(im.convert("RGB"))
        out.append(signature.make(cv2.resize(rgb, (1600, round(1600 * rgb.shape[0] / rgb.shape[1])),
                                             interpolation=cv2.INTER_AREA)))
    return out[0], out[1]


def _flip_masks(rng: np.random.Generator, count: int, max_bits: int) -> np.ndarray:
    """`count` 64-bit masks with 0..max_bits random bits set."""
    masks = np.zeros(count, dtype=np.uint64)
    nbits = rng.integers(0, max_bits + 1, size=count)
    for k in range(1, max_bits + 1):
        sel = nbits >= k
        masks[sel] |= np.left_shift(np.uint64(1), rng.integers(0, 64, size=int(sel.sum())).astype(np.uint64))
    return masks


def _row(path: str, h: int, ts: float, sharp: float, cid: int | None, pick: int, state: str = "done") -> tuple:
    hx = f"{h:016x}"
    return (path, state, hx, *cluster.bands(hx), ts, sharp, cid, pick)


def build(path: Path, n: int, seed: int = 1) -> dict:
    """Fill a new database with n photos already clustered; return burst tails for queries."""
    rng = np.random.default_rng(seed)
    db = sqlite_utils.Database(path, recreate=True)
    db.enable_wal()
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-1000000")  # building only; measurement reopens with defaults
    migrations.apply(db)

    # Group sizes: about 60 % of photos in bursts of 2..12.
    sizes: list[int] = []
    total = 0
    while total < n:
        # P(burst) so that bursts (mean 7 frames) hold 60 % of photos.
        s = int(rng.integers(2, 13)) if rng.random() < 0.6 / (0.6 + 0.4 * 7) else 1
        s = min(s, n - total)
        sizes.append(s)
        total += s
    groups = len(sizes)
    bases = rng.integers(0, 2**64, size=groups, dtype=np.uint64, endpoint=False)
    starts = T_START + rng.random(groups) * SPAN
    size_arr = np.array(sizes)
    group_of = np.repeat(np.arange(groups), size_arr)
    hashes = bases[group_of] ^ _flip_masks(rng, n, 8)
    offsets = rng.uniform(0.2, 2.0, size=n)
    first = np.concatenate(([0], np.cumsum(size_arr)[:-1]))
    cum = np.cumsum(offsets)
    ts = starts[group_of] + cum - cum[first][group_of]
    sharp = rng.uniform(0, 500, size=n)
    # The pick of each group: its sharpest frame.
    order = np.lexsort((-sharp, group_of))
    pick_idx = order[first]
    is_pick = np.zeros(n, dtype=np.int64)
    is_pick[pick_idx] = 1

    with db.atomic():
        db.conn.executemany(
            "INSERT INTO clusters (id, pick_photo_id, size, created_at) VALUES (?, ?, ?, 0)",
            ((g + 1, int(pick_idx[g]) + 1, sizes[g]) for g in range(groups)),
        )
        db.conn.executemany(
            INSERT_SQL.replace("(original_path", "(id, original_path").replace("VALUES (?", "VALUES (?, ?"),
            ((i + 1, *_row(f"/lib/{i}.jpg", h, t, s, g + 1, p))
             for i, (h, t, s, g, p) in enumerate(zip(hashes.tolist(), ts.tolist(), sharp.tolist(),
                                                       group_of.tolist(), is_pick.tolist()))),
        )
    last = np.concatenate((first[1:], [n])) - 1
    tails = [(int(bases[g]), float(ts[last[g]]), g + 1) for g in range(groups) if sizes[g] > 1]
    db.close()
    return {"tails": tails}


def _queries(rng: random.Random, tails: list[tuple[int, float, int]], count: int
             ) -> tuple[list[tuple[int, float]], set[int]]:
    """New photos, half continuing a burst, half unrelated; and the bursts continued."""
    out, continued = [], set()
    for i in range(count):
        if i % 2 == 0:
            base, t, cid = rng.choice(tails)
            continued.add(cid)
            h = base
            for b in rng.sample(range(64), rng.randint(0, 6)):
                h ^= 1 << b
            out.append((h, t + rng.uniform(0.2, 2.0)))
        else:
            out.append((rng.getrandbits(64), T_START + rng.random() * SPAN))
    return out, continued


def _insert_new(db: sqlite_utils.Database, tag: str, h: int, t: float, sig: bytes | None = None) -> int:
    cur = db.execute(INSERT_SQL, _row(f"/in/{tag}.jpg", h, t, random.uniform(0, 500), None, 0, "analysed"))
    if sig is not None:
        db.execute("INSERT INTO signatures (photo_id, data) VALUES (?, ?)", [cur.lastrowid, sig])
    db.conn.commit()
    return cur.lastrowid


def _verified(db: sqlite_utils.Database, photo_id: int, found: list) -> tuple[int, int] | None:
    """The first candidate (by distance, time, id) the signatures confirm, as find_match takes it."""
    sig = cluster._signature(db, photo_id)
    for (d, _, pid), cid in sorted(found):
        other = cluster._signature(db, pid) if sig is not None else None
        if sig is None or other is None:
            if d <= min(cluster.LEGACY_DISTANCE, CFG.max_distance):
                return pid, cid
        elif signature.difference(sig, other) <= CFG.max_change:
            return pid, cid
    return None


def naive_match(db: sqlite_utils.Database, photo_id: int, h: str, t: float) -> tuple[int, int] | None:
    q = int(h, 16)
    found = []
    for pid, ph, ts, cid in db.execute(
        "SELECT id, phash, captured_ts, cluster_id FROM photos WHERE cluster_id IS NOT NULL"
    ):
        if pid == photo_id:
            continue
        d = (q ^ int(ph, 16)).bit_count()
        dt = abs(ts - t)
        if d <= CFG.max_distance and dt <= CFG.window_seconds:
            found.append(((d, dt, pid), cid))
    return _verified(db, photo_id, found)


def window_match(db: sqlite_utils.Database, photo_id: int, h: str, t: float) -> tuple[int, int] | None:
    q = int(h, 16)
    found = []
    for pid, ph, ts, cid in db.execute(
        "SELECT id, phash, captured_ts, cluster_id FROM photos"
        " WHERE captured_ts BETWEEN ? AND ? AND cluster_id IS NOT NULL",
        [t - CFG.window_seconds, t + CFG.window_seconds],
    ):
        if pid == photo_id:
            continue
        d = (q ^ int(ph, 16)).bit_count()
        dt = abs(ts - t)
        if d <= CFG.max_distance and dt <= CFG.window_seconds:
            found.append(((d, dt, pid), cid))
    return _verified(db, photo_id, found)


def _ms(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs) * 1e3, xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] * 1e3


def measure(path: Path, tails: list[tuple[int, float]], n_assign: int, n_naive: int, seed: int = 2) -> dict:
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA synchronous=NORMAL")
    rng = random.Random(seed)
    queries, continued = _queries(rng, tails, n_assign)
    # The frames of the bursts that new photos continue carry the scene's real signature, so
    # their matches are verified as in the service. (Giving all 600,000 burst frames one
    # would write 3.6 GB for nothing: no lookup reads the others.)
    first_frame, next_frame = frame_signatures()
    with db.atomic():
        db.conn.executemany(
            "INSERT OR REPLACE INTO signatures (photo_id, data) SELECT id, ? FROM photos WHERE cluster_id = ?",
            ((first_frame, cid) for cid in continued))

    # Lookup-only timings and the two alternatives, on photos not yet assigned. Every new photo
    # carries the signature of the scene's next real frame; the burst continuations find
    # candidates and verify them, the unrelated photos find none.
    pending = [(_insert_new(db, f"q{i}", h, t, next_frame), f"{h:016x}", t) for i, (h, t) in enumerate(queries)]
    # Warm the page cache the same way for every method.
    for pid, hx, t in pending[:20]:
        cluster.find_match(db, pid, hx, t, CFG, sig=next_frame)
    lookup, verified, window, naive = [], [], [], []
    rows_read = 0
    limit = db.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    for pid, hx, t in pending:
        # The candidate search alone (no signature: nothing to verify) ...
        t0 = time.perf_counter()
        cluster.find_match(db, pid, hx, t, CFG)
        lookup.append(time.perf_counter() - t0)
        # ... and with the verification, as the service does it.
        t0 = time.perf_counter()
        got = cluster.find_match(db, pid, hx, t, CFG, sig=next_frame)
        verified.append(time.perf_counter() - t0)
        # Untimed: how many index hits the band lookup has to verify.
        rows_read += sum(len(db.execute(sql, p).fetchall()) for sql, p in cluster.candidate_queries(hx, t, CFG, limit))
        t0 = time.perf_counter()
        assert window_match(db, pid, hx, t) == got
        window.append(time.perf_counter() - t0)
    for pid, hx, t in pending[:n_naive]:
        t0 = time.perf_counter()
        ref = naive_match(db, pid, hx, t)
        naive.append(time.perf_counter() - t0)
        assert ref == cluster.find_match(db, pid, hx, t, CFG, sig=next_frame), "the lookup disagrees with the full scan"

    # The verification's own cost: signature.difference on the two real frames, and how
    # many a new photo needs (counted on an untimed pass).
    verify = []
    for _ in range(200):
        t0 = time.perf_counter()
        signature.difference(first_frame, next_frame)
        verify.append(time.perf_counter() - t0)
    calls = [0]
    real_difference = signature.difference

    def counting(a, b):
        calls[0] += 1
        return real_difference(a, b)
    signature.difference = counting
    try:
        for pid, hx, t in pending:
            cluster.find_match(db, pid, hx, t, CFG, sig=next_frame)
    finally:
        signature.difference = real_difference

    # Full assign (lookup, verification, pick bookkeeping, commit).
    assign_t, joined = [], 0
    existing = db.execute("SELECT max(id) FROM clusters").fetchone()[0]
    for pid, _, _ in pending:
        t0 = time.perf_counter()
        cid, _ = cluster.assign(db, pid, CFG)
        assign_t.append(time.perf_counter() - t0)
        joined += cid <= existing
    db.close()
    return {"assign": _ms(assign_t), "lookup": _ms(lookup), "verified": _ms(verified), "window": _ms(window),
            "naive": _ms(naive),
            "n_naive": len(naive), "joined": joined, "n": len(pending), "rows": rows_read / len(pending),
            "verify": _ms(verify), "verifications": calls[0] / len(pending)}


def dense_window(path: Path, extra: int, n_q: int = 100) -> dict:
    """Add `extra` unrelated photos inside one 4-minute span; time lookups there."""
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA synchronous=NORMAL")
    rng = random.Random(3)
    t_mid = T_START + SPAN / 2
    cid0 = db.execute("SELECT max(id) FROM clusters").fetchone()[0]
    with db.atomic():
        db.conn.executemany(
            "INSERT INTO clusters (id, pick_photo_id, size, created_at) VALUES (?, NULL, 1, 0)",
            ((cid0 + 1 + i,) for i in range(extra)),
        )
        db.conn.executemany(INSERT_SQL, (
            _row(f"/dense/{i}.jpg", rng.getrandbits(64), t_mid + rng.uniform(-120, 120), 1.0, cid0 + 1 + i, 1)
            for i in range(extra)))
    pending = [(_insert_new(db, f"d{i}", rng.getrandbits(64), t_mid + rng.uniform(-60, 60))) for i in range(n_q)]
    rows = {pid: db.execute("SELECT phash, captured_ts FROM photos WHERE id = ?", [pid]).fetchone()
            for pid in pending}
    lookup, window = [], []
    for pid in pending:
        hx, t = rows[pid]
        t0 = time.perf_counter()
        got = cluster.find_match(db, pid, hx, t, CFG)
        lookup.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert window_match(db, pid, hx, t) == got
        window.append(time.perf_counter() - t0)
    db.close()
    return {"lookup": _ms(lookup), "window": _ms(window)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-1m", action="store_true", help="skip the 1,000,000-photo database")
    ap.add_argument("--queries", type=int, default=300, help="new photos assigned per size")
    args = ap.parse_args()

    sizes = [10_000, 100_000] + ([] if args.no_1m else [1_000_000])
    naive_q = {10_000: 50, 100_000: 20, 1_000_000: 5}
    workdir = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    print(f"SQLite {sqlite_utils.Database(memory=True).sqlite_version}, max_distance={CFG.max_distance}"
          f" (band radius {cluster.band_radius(CFG.max_distance)}, "
          f"{len(cluster.neighbour_masks(cluster.band_radius(CFG.max_distance)))} values/band),"
          f" window={CFG.window_seconds:g}s, dir {workdir}")
    results = {}
    try:
        for n in sizes:
            path = workdir / f"cluster_{n}.db"
            t0 = time.perf_counter()
            tails = build(path, n)["tails"]
            built = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = measure(path, tails, args.queries, naive_q[n])
            results[n] = r
            print(f"  {n:>9,}: built in {built:.1f}s, measured in {time.perf_counter() - t0:.1f}s;"
                  f" {r['joined']}/{r['n']} new photos joined an existing cluster", flush=True)
            if n == 100_000:
                results["dense"] = dense_window(path, 20_000)
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print("times in ms (median / p95)")
    print(f"{'photos':>10} | {'assign':>15} | {'lookup':>15} | {'lookup+verify':>15} | {'band rows':>9} |"
          f" {'window only':>15} | {'full scan':>17}")
    print("-" * 118)
    for n in sizes:
        r = results[n]
        fmt = lambda m: f"{m[0]:6.3f} / {m[1]:6.3f}"  # noqa: E731
        print(f"{n:>10,} | {fmt(r['assign']):>15} | {fmt(r['lookup']):>15} | {fmt(r['verified']):>15} |"
              f" {r['rows']:>9.1f} | {fmt(r['window']):>15} | {r['naive'][0]:8.1f} (n={r['n_naive']})")
    print("(lookup: the candidate search; lookup+verify: with the signature checks; window only and full"
          " scan verify the same way)")
    print()
    for n in sizes:
        r = results[n]
        print(f"verification at {n:,}: {r['verifications']:.2f} signature comparisons per new photo,"
              f" {r['verify'][0]:.3f} ms each (median; p95 {r['verify'][1]:.3f}):"
              f" {r['verifications'] * r['verify'][0]:.3f} ms per photo")
    big, small = sizes[-1], sizes[0]
    print()
    for key, label in (("assign", "assign"), ("lookup", "lookup"), ("verified", "lookup+verify"),
                       ("naive", "full scan")):
        print(f"ratio {big:,}/{small:,} of median {label}: {results[big][key][0] / results[small][key][0]:.2f}")
    print(f"ratio {big:,}/{small:,} of rows the bands propose per lookup: {results[big]['rows'] / results[small]['rows']:.2f}")
    if "dense" in results:
        d = results["dense"]
        print(f"\ndense window (100k + 20,000 unrelated photos within 4 minutes): "
              f"lookup {d['lookup'][0]:.3f} ms median, window-only {d['window'][0]:.3f} ms median")


if __name__ == "__main__":
    main()
