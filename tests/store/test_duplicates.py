"""Duplicates across the whole library by pHash: real re-encoded copies group, other photos do not."""
from __future__ import annotations

import random
import time
from pathlib import Path

from PIL import Image

from starsort.analysis import decode, phash
from starsort.library import bursts as cluster
from starsort.store import duplicates
from starsort.config import Config
from starsort.analysis.job import Job
from starsort.pipeline import Context

from ..helpers import DATA


def real_phash(path: Path) -> str:
    job = Job(photo_id=0, path=str(path), kind="jpeg")
    ctx = Context(config=Config())
    decode.run(job, ctx)
    phash.run(job, ctx)
    return job.phash


def add(db, path: str, ph: str, captured_ts: float = 0.0, state: str = "done") -> int:
    now = time.time()
    return db.execute(
        "INSERT INTO photos (original_path, current_path, kind, state, phash, captured_ts, queued_at, updated_at)"
        " VALUES (?, ?, 'jpeg', ?, ?, ?, ?, ?) RETURNING id", (path, path, state, ph, captured_ts, now, now)).fetchone()[0]


def test_a_resized_reencoded_copy_imported_a_year_later_is_a_duplicate(fresh_db, tmp_path):
    copy = tmp_path / "export.jpg"
    with Image.open(DATA / "clapton-2.jpg") as im:
        im.convert("RGB").resize((im.width // 2, im.height // 2), Image.LANCZOS).save(copy, quality=70)
    first = add(fresh_db, "/lib/5-stars/clapton-2.jpg", real_phash(DATA / "clapton-2.jpg"), captured_ts=0)
    add(fresh_db, "/lib/5-stars/export.jpg", real_phash(copy), captured_ts=365 * 86400)
    add(fresh_db, "/lib/4-stars/ivan.jpg", real_phash(DATA / "ivan.jpg"), captured_ts=10)

    [group] = duplicates.groups(fresh_db, 2)

    assert [p.path for p in group] == ["/lib/5-stars/clapton-2.jpg", "/lib/5-stars/export.jpg"]
    assert group[0].id == first


def test_groups_chain_transitively_and_respect_the_distance(fresh_db):
    a = 0xAB37E44B9D60944B
    add(fresh_db, "/a", f"{a:016x}")
    add(fresh_db, "/b", f"{a ^ 0b11:016x}")            # 2 bits from a
    add(fresh_db, "/c", f"{a ^ 0b1111:016x}")          # 2 bits from b, 4 from a
    add(fresh_db, "/d", f"{a ^ (1 << 63):016x}")       # 1 bit from a, in another band

    assert [[p.path for p in g] for g in duplicates.groups(fresh_db, 2)] == [["/a", "/b", "/c", "/d"]]
    assert [[p.path for p in g] for g in duplicates.groups(fresh_db, 1)] == [["/a", "/d"]]
    assert duplicates.groups(fresh_db, 0) == []


def test_photos_not_filed_are_left_out(fresh_db):
    add(fresh_db, "/a", "ab37e44b9d60944b")
    add(fresh_db, "/b", "ab37e44b9d60944b", state="quarantined")
    assert duplicates.groups(fresh_db, 2) == []


def test_the_band_lookup_finds_exactly_what_comparing_every_pair_finds(fresh_db):
    rng = random.Random(6)
    hashes = []
    for _ in range(300):
        h = rng.getrandbits(64)
        hashes.append(h)
        for _ in range(rng.randrange(3)):          # a few near copies of some
            hashes.append(h ^ sum(1 << rng.randrange(64) for _ in range(rng.randrange(6))))
    for i, h in enumerate(hashes):
        add(fresh_db, f"/p{i}", f"{h:016x}")
    for d in (0, 2, 5, 8):
        got = {frozenset(p.id for p in g) for g in duplicates.groups(fresh_db, d)}
        parent = list(range(len(hashes)))

        def find(i):
            while parent[i] != i:
                i = parent[i]
            return i
        for i in range(len(hashes)):
            for j in range(i):
                if cluster.hamming(f"{hashes[i]:016x}", f"{hashes[j]:016x}") <= d:
                    parent[find(i)] = find(j)
        want: dict[int, set[int]] = {}
        for i in range(len(hashes)):
            want.setdefault(find(i), set()).add(i + 1)
        assert got == {frozenset(g) for g in want.values() if len(g) > 1}, d
