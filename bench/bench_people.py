"""People's costs: embedding a face, finding a person among 100k and 1M faces, grouping a batch.

    .venv/bin/python bench/bench_people.py

* embed: the embed stage (alignment + SFace through OpenCV's dnn) per face, on
  the face photos of ../shared/data (else tests/data), in this process with
  the worker's thread settings; median and p90 over every face.
* find: `store.people.find` at the default thresholds (a matrix product; the
  sure matches averaged into a second query and a second product; the
  threshold; the nearest face per photo) against synthetic unit vectors, 100,000 and 1,000,000 faces
  (4 faces a photo); median of 20 queries. Synthetic vectors are fine here:
  the cost does not depend on what the vectors say.
* group: `library.people.group` for a batch of 20 new faces, in a database
  holding 1,000, 20,000 and 100,000 faces already grouped (synthetic people of 1-8
  faces), median of 5 batches each, with the people kept in memory as the
  service keeps them (store.people.PeopleCache, warm from the batches before,
  reading back only the people a batch changed). The ratio says whether the
  cost follows the library; it should follow the new faces (what remains of
  the library in it is one matrix product against the people's sums).

Prints a table, and appends it to bench/people-results.md with the date.
"""
from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))
sys.path.insert(0, str(ROOT / "bench"))

RESULTS = ROOT / "bench" / "people-results.md"


def bench_embed() -> tuple[float, float, int]:
    import cv2

    import qualityset
    from starsort.analysis import decode, embed, faces, filetype
    from starsort.analysis.job import BadInput, Job
    cv2.setNumThreads(1)                      # as in a worker: one torch/OpenCV thread per worker
    ctx = qualityset.analysis_context()
    model = embed.load(ctx)
    src = qualityset.SHARED / "faces" if (qualityset.SHARED / "faces").is_dir() else ROOT / "tests" / "data"
    times = []
    for p in sorted(src.rglob("*.jp*g"))[:80]:
        try:
            job = Job(1, str(p), filetype.decode_kind(str(p)))
            decode.run(job, ctx)
        except BadInput:
            continue
        faces.run(job, ctx)
        for f in job.faces:
            pts = [(x * job.scale, y * job.scale) for x, y in f.landmarks]
            t = time.perf_counter()
            model.vector(embed.align(job.image, pts))
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, float(np.percentile(times, 90)) * 1000, len(times)


def bench_find(n: int, rng: np.random.Generator) -> float:
    from starsort.config import Config
    from starsort.store import people
    from starsort.store.people import Vectors
    cfg = Config().people
    m = rng.normal(size=(n, 128)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    v = Vectors(np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64) // 4, m)
    times = []
    for _ in range(20):
        q = m[rng.integers(n)] + 0.3 * rng.normal(size=128).astype(np.float32) / np.sqrt(128)
        q /= np.linalg.norm(q)
        t = time.perf_counter()
        people.find(v, q, cfg.threshold, cfg.expand_threshold)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_group(existing: int, rng: np.random.Generator) -> float:
    from sqlite_utils import Database

    from starsort.config import Config
    from starsort.library import people
    from starsort.store.migrations import migrations
    from starsort.store import people as store
    cfg = Config()
    db = Database(sqlite3.connect(":memory:", isolation_level=None))
    migrations.apply(db)
    directions = rng.normal(size=(existing // 4 + 1, 128))
    done = 0
    person = 0
    photo = 0

    def add_face(direction) -> int:
        nonlocal photo
        photo += 1
        db.execute("INSERT INTO photos (id, original_path, kind, state, queued_at, updated_at) VALUES"
                   " (?, ?, 'jpeg', 'done', 0, 0)", (photo, f"/p/{photo}"))
        fid = db.execute("INSERT INTO faces (photo_id, x1, y1, x2, y2, blur_score) VALUES (?, 0, 0, 120, 150, 50)",
                         (photo,)).lastrowid
        v = direction / np.linalg.norm(direction) + 0.35 * rng.normal(size=128) / np.sqrt(128)
        store.add_vector(db, fid, "bench", (v / np.linalg.norm(v)).astype("<f4").tobytes())
        return fid

    with db.conn:
        while done < existing:
            pid = store.new_person(db)
            for _ in range(int(rng.integers(1, 9))):
                store.assign(db, add_face(directions[person % len(directions)]), pid, confirmed=False)
                done += 1
            person += 1
    # As the service holds it: warm from the batches before, read back only where they changed.
    cache = store.PeopleCache()
    cache.sync(db)
    times = []
    for _ in range(5):
        first = None
        for _ in range(20):
            fid = add_face(directions[int(rng.integers(len(directions)))] if rng.random() < 0.7
                           else rng.normal(size=128))
            first = first or fid
        t = time.perf_counter()
        with db.conn:
            people.group(db, cfg, since_face=first - 1, cache=cache)
        times.append(time.perf_counter() - t)
    db.conn.close()
    return statistics.median(times) * 1000


def main() -> None:
    rng = np.random.default_rng(1)
    e50, e90, n_faces = bench_embed()
    f100k = bench_find(100_000, rng)
    f1m = bench_find(1_000_000, rng)
    g1k = bench_group(1_000, rng)
    g20k = bench_group(20_000, rng)
    g100k = bench_group(100_000, rng)
    lines = [
        f"## {date.today().isoformat()} ({os.cpu_count()} cores)",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| embed, per face (median / p90 of {n_faces}) | {e50:.1f} / {e90:.1f} ms | < 30 ms |",
        f"| find among 100,000 faces (median of 20) | {f100k:.1f} ms | < 50 ms |",
        f"| find among 1,000,000 faces (median of 20) | {f1m:.1f} ms | < 300 ms |",
        f"| group 20 new faces, 1,000 faces grouped before | {g1k:.1f} ms | |",
        f"| group 20 new faces, 20,000 faces grouped before | {g20k:.1f} ms ({g20k / g1k:.2f}x for 20x the faces) | follows the new faces |",
        f"| group 20 new faces, 100,000 faces grouped before | {g100k:.1f} ms ({g100k / g1k:.2f}x for 100x the faces) | follows the new faces |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    new = not RESULTS.exists()
    with open(RESULTS, "a") as f:
        if new:
            f.write("# People: what embedding, finding and grouping cost (bench/bench_people.py)\n\n")
        f.write(text + "\n")


if __name__ == "__main__":
    main()
