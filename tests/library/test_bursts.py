"""Burst clustering: who joins whom, who is the pick, and that the lookup uses the indexes."""
from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timezone

import cv2
import numpy as np
import pytest
import sqlite_utils

from starsort.analysis import signature
from starsort.library import bursts as cluster
from starsort.library.bursts import assign, bands, hamming
from starsort.config import ClusterConfig
from starsort.store.migrations import migrations

CFG = ClusterConfig(max_distance=10)  # window 120 s; the widest distance we test the bands at
T0 = 1_700_000_000.0
WINDOW_SCAN = cluster.WINDOW_SCAN      # as the module sets it, before any test changes it


@pytest.fixture(autouse=True, params=["window", "bands"])
def lookup(request, monkeypatch) -> str:
    """Every test runs both ways a lookup finds its candidates: reading a sparse capture window
    whole, and through the band indexes (what a crowded window uses)."""
    if request.param == "bands":
        monkeypatch.setattr(cluster, "WINDOW_SCAN", -1)
    return request.param


@pytest.fixture
def db() -> sqlite_utils.Database:
    d = sqlite_utils.Database(memory=True)
    migrations.apply(d)
    return d


def scene(shift: float = 0.0, gain: float = 1.0, person_moved: float = 0.0) -> np.ndarray:
    """A textured 400 x 600 frame with a bright 'person' in the middle: moved sideways by
    `person_moved` of the width, and the whole frame shifted by `shift` and exposed x `gain`."""
    rng = np.random.default_rng(5)
    img = cv2.GaussianBlur(rng.normal(120, 60, (400, 600)), (0, 0), 4)
    person = img[100:400, 240:360].copy() * 0.5 + 110
    out = img.copy()
    x = 240 + round(person_moved * 600)
    out[100:400, x:x + 120] = person
    m = np.float32([[1, 0, shift * 600], [0, 1, shift * 400]])
    out = cv2.warpAffine(out, m, (600, 400), borderMode=cv2.BORDER_REFLECT) * gain
    return np.clip(out, 0, 255).astype(np.uint8)


SCENE = signature.make(scene())


def add(db: sqlite_utils.Database, phash: str | None, ts: float | None, sharpness: float | None = 1.0,
        sig: bytes | None = SCENE, camera: str | None = None, subsec: bool = False) -> int:
    """A photo analysed and stored as the pipeline stores one; by default its frame is SCENE."""
    b = bands(phash) if phash is not None else (None,) * 4
    cur = db.execute(
        "INSERT INTO photos (original_path, kind, state, queued_at, updated_at,"
        " phash, b0, b1, b2, b3, captured_ts, sharpness, camera_model, captured_subsec)"
        " VALUES (?, 'jpeg', 'analysed', 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [f"/in/{random.random()}.jpg", phash, *b, ts, sharpness, camera, int(subsec)],
    )
    if sig is not None:
        db.execute("INSERT INTO signatures (photo_id, data) VALUES (?, ?)", [cur.lastrowid, sig])
    db.conn.commit()
    return cur.lastrowid


def add_and_assign(db, phash, ts, sharpness=1.0, cfg=CFG, **kw) -> tuple[int, int | None, bool]:
    pid = add(db, phash, ts, sharpness, **kw)
    cid, pick = assign(db, pid, cfg)
    return pid, cid, pick


def flip(phash: str, bits: list[int]) -> str:
    """Flip the given bit positions (0 = least significant)."""
    v = int(phash, 16)
    for b in bits:
        v ^= 1 << b
    return f"{v:016x}"


def spread(distance: int) -> list[int]:
    """Bit positions giving `distance` flips spread as evenly as possible over the four bands."""
    per_band = [distance // 4 + (1 if i < distance % 4 else 0) for i in range(4)]
    return [16 * band + k for band, n in enumerate(per_band) for k in range(n)]


def assert_one_sharpest_pick_per_cluster(db) -> None:
    for cid, pick_id, size in db.execute("SELECT id, pick_photo_id, size FROM clusters").fetchall():
        members = db.execute(
            "SELECT id, sharpness, is_pick FROM photos WHERE cluster_id = ?", [cid]
        ).fetchall()
        assert size == len(members) > 0
        picks = [m[0] for m in members if m[2]]
        best = max(members, key=lambda m: (m[1] is not None, m[1] or 0.0, -m[0]))[0]
        assert picks == [pick_id] == [best]


# ---- helpers ------------------------------------------------------------------

def test_bands_split_the_hash_into_16_bit_words_most_significant_first():
    assert bands("0123456789abcdef") == (0x0123, 0x4567, 0x89AB, 0xCDEF)


def test_hamming_counts_the_differing_bits():
    assert hamming("0000000000000000", "ffffffffffffffff") == 64
    # Sony A6400 DSC00007 and DSC00008, 12 s apart.
    assert hamming("c125621b1bec3ed9", "c125625b1be43ed9") == 2


def test_a_malformed_hash_is_refused():
    with pytest.raises(ValueError):
        bands("abc")


def test_the_neighbourhood_of_radius_two_has_137_values():
    masks = cluster.neighbour_masks(2)
    assert len(masks) == len(set(masks)) == 1 + 16 + 120
    assert all(m.bit_count() <= 2 for m in masks)


# ---- who joins whom -------------------------------------------------------------

def test_the_first_photo_opens_a_cluster_of_its_own_and_is_its_pick(db):
    pid, cid, pick = add_and_assign(db, "ab37e44b9d60944b", T0)
    assert pick is True
    assert db.execute("SELECT pick_photo_id, size FROM clusters WHERE id = ?", [cid]).fetchone() == (pid, 1)


def test_a_near_duplicate_within_the_window_joins_the_earlier_cluster(db):
    _, first, _ = add_and_assign(db, "ab37e44b9d60944b", T0)
    _, second, _ = add_and_assign(db, flip("ab37e44b9d60944b", [0, 17, 40]), T0 + 30)
    assert second == first
    assert db.execute("SELECT size FROM clusters WHERE id = ?", [first]).fetchone()[0] == 2


def test_a_photo_one_bit_beyond_the_distance_starts_a_new_cluster(db):
    base = "ab37e44b9d60944b"
    _, first, _ = add_and_assign(db, base, T0)
    _, at_limit, _ = add_and_assign(db, flip(base, spread(10)), T0 + 1)
    assert at_limit == first
    # 11 bits from the base, and more than 10 from the frame just added.
    far = flip(base, list(range(11)))
    assert hamming(far, base) == 11 and hamming(far, flip(base, spread(10))) > 10
    _, beyond, _ = add_and_assign(db, far, T0 + 2)
    assert beyond != first


def test_an_identical_hash_outside_the_time_window_starts_a_new_cluster(db):
    _, first, _ = add_and_assign(db, "ab37e44b9d60944b", T0)
    _, later, _ = add_and_assign(db, "ab37e44b9d60944b", T0 + 120.5)
    _, earlier, _ = add_and_assign(db, "ab37e44b9d60944b", T0 - 300)
    assert len({first, later, earlier}) == 3


def test_the_window_is_inclusive_in_both_directions(db):
    _, first, _ = add_and_assign(db, "ab37e44b9d60944b", T0)
    _, after, _ = add_and_assign(db, "ab37e44b9d60944b", T0 + 120)
    _, before, _ = add_and_assign(db, "ab37e44b9d60944b", T0 - 120)
    assert first == after == before


def test_the_most_similar_candidate_wins_over_a_closer_in_time_one(db):
    base = "0f0f0f0f0f0f0f0f"
    _, far_cluster, _ = add_and_assign(db, flip(base, spread(8)), T0 - 1)
    _, near_cluster, _ = add_and_assign(db, flip(base, [63, 62, 61, 60, 59, 58, 57]), T0 - 100)
    assert far_cluster != near_cluster
    # 8 bits from the first (but 1 s away), 7 from the second (100 s away).
    _, joined, _ = add_and_assign(db, base, T0)
    assert joined == near_cluster


def test_at_equal_distance_the_candidate_closest_in_time_wins(db):
    base = "0f0f0f0f0f0f0f0f"
    # 180 s apart, so two clusters; the new frame is 5 bits from each.
    _, a, _ = add_and_assign(db, flip(base, [1, 2, 3, 4, 5]), T0 - 90)
    _, b, _ = add_and_assign(db, flip(base, [40, 41, 42, 43, 44]), T0 + 90)
    assert a != b
    _, joined, _ = add_and_assign(db, base, T0 + 10)
    assert joined == b


def test_a_match_differing_in_every_band_is_still_found_through_a_band_at_radius_two(db):
    base = "ab37e44b9d60944b"
    # 3 + 3 + 2 + 2 = 10 bits: no band is equal, two are exactly at radius 2.
    other = flip(base, [0, 1, 2, 16, 17, 18, 32, 33, 48, 49])
    assert hamming(base, other) == 10
    assert all(x != y for x, y in zip(bands(base), bands(other)))
    _, first, _ = add_and_assign(db, base, T0)
    _, second, _ = add_and_assign(db, other, T0 + 5)
    assert second == first


@pytest.mark.parametrize("max_distance", [0, 3, 4, 7, 10, 13, 16, 24])
def test_every_distance_up_to_the_limit_is_found_however_it_spreads_over_the_bands(db, max_distance):
    cfg = ClusterConfig(max_distance=max_distance)
    rng = random.Random(max_distance)
    base = f"{rng.getrandbits(64):016x}"
    _, home, _ = add_and_assign(db, base, T0, cfg=cfg)
    for t, bits in enumerate([spread(max_distance), list(range(max_distance)),
                              rng.sample(range(64), max_distance)], start=1):
        _, cid, _ = add_and_assign(db, flip(base, bits), T0 + t, cfg=cfg)
        assert cid == home, bits
    _, outsider, _ = add_and_assign(db, f"{int(base, 16) ^ 0xFFFFFFFFFFFFFFFF:016x}", T0 + 9, cfg=cfg)
    assert outsider != home


def test_a_low_variable_limit_splits_the_lookup_into_chunks_that_still_find_the_match(db):
    db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)
    base = "ab37e44b9d60944b"
    statements = cluster.candidate_queries(base, T0, CFG, max_variables=100)
    assert len(statements) > 4 and all(len(p) <= 100 for _, p in statements)
    _, first, _ = add_and_assign(db, base, T0)
    _, second, _ = add_and_assign(db, flip(base, spread(10)), T0 + 1)
    assert second == first


# ---- the second opinion: the frames themselves, and the clock -----------------------------

def test_a_near_hash_whose_frame_shows_the_person_moved_starts_a_cluster_of_its_own(db):
    base = "ab37e44b9d60944b"
    _, first, _ = add_and_assign(db, base, T0)
    _, handheld, _ = add_and_assign(db, flip(base, spread(8)), T0 + 2, sig=signature.make(scene(0.02, 0.9)))
    _, moved, _ = add_and_assign(db, flip(base, [0, 1]), T0 + 20, sig=signature.make(scene(person_moved=0.08)))
    assert handheld == first and moved != first


def test_photos_without_a_signature_match_on_the_hash_alone_within_the_old_radius(db):
    base = "ab37e44b9d60944b"
    _, first, _ = add_and_assign(db, base, T0, sig=None)
    _, close, _ = add_and_assign(db, flip(base, spread(cluster.LEGACY_DISTANCE)), T0 + 1, sig=None)
    # One bit beyond the old radius from the first, and further still from the second.
    _, loose, _ = add_and_assign(db, flip(base, list(range(56, 56 + cluster.LEGACY_DISTANCE + 1))), T0 + 2,
                                 sig=None)
    assert close == first and loose != first


def test_frames_a_fraction_of_a_second_apart_from_one_camera_are_a_burst_whatever_they_show(db):
    _, first, _ = add_and_assign(db, "ab37e44b9d60944b", T0 + 0.1, camera="ILCE-7M4", subsec=True)
    other = f"{int('ab37e44b9d60944b', 16) ^ 0xFFFF0000FFFF:016x}"     # 32 bits away
    _, moved, _ = add_and_assign(db, other, T0 + 0.35, camera="ILCE-7M4", subsec=True,
                                 sig=signature.make(scene(person_moved=0.15)))
    assert moved == first


def test_the_clock_alone_joins_neither_another_camera_nor_frames_without_sub_seconds(db):
    # Four frames that pHash and their signatures would never join: only the clock could.
    frames = [(f"{int('ab37e44b9d60944b', 16) ^ (0xFFFF << (16 * i)):016x}", signature.make(scene(person_moved=0.1 * i)))
              for i in range(4)]
    _, first, _ = add_and_assign(db, frames[0][0], T0, camera="ILCE-7M4", subsec=True, sig=frames[0][1])
    _, second_body, _ = add_and_assign(db, frames[1][0], T0 + 0.2, camera="ILCE-1", subsec=True, sig=frames[1][1])
    _, whole_seconds, _ = add_and_assign(db, frames[2][0], T0 + 0.5, camera="ILCE-7M4", sig=frames[2][1])
    _, too_late, _ = add_and_assign(db, frames[3][0], T0 + 1.6, camera="ILCE-7M4", subsec=True, sig=frames[3][1])
    assert len({first, second_body, whole_seconds, too_late}) == 4


def test_two_cameras_on_one_scene_do_not_share_a_burst(db):
    _, a, _ = add_and_assign(db, "ab37e44b9d60944b", T0, camera="SLT-A55V")
    _, b, _ = add_and_assign(db, "ab37e44b9d60944b", T0 + 3, camera="ILCE-6400")
    _, c, _ = add_and_assign(db, "ab37e44b9d60944b", T0 + 5, camera="SLT-A55V")
    assert a != b and c == a


def test_a_photo_without_a_phash_is_left_unclustered(db):
    pid = add(db, None, T0)
    assert assign(db, pid, CFG) == (None, False)
    assert db.execute("SELECT cluster_id, is_pick FROM photos WHERE id = ?", [pid]).fetchone() == (None, 0)
    assert db.execute("SELECT count(*) FROM clusters").fetchone()[0] == 0


def test_a_photo_without_a_capture_time_gets_a_cluster_of_its_own(db):
    _, first, _ = add_and_assign(db, "ab37e44b9d60944b", T0)
    _, undated, pick = add_and_assign(db, "ab37e44b9d60944b", None)
    assert undated != first and pick is True


def test_a_missing_photo_is_an_error(db):
    with pytest.raises(LookupError):
        assign(db, 12345, CFG)


def test_stale_bands_are_rewritten_from_the_hash(db):
    _, first, _ = add_and_assign(db, "ab37e44b9d60944b", T0)
    pid = add(db, "ab37e44b9d60944b", T0 + 1)
    db.execute("UPDATE photos SET b0 = 0, b1 = 0, b2 = 0, b3 = 0 WHERE id = ?", [pid])
    assert assign(db, pid, CFG)[0] == first
    assert db.execute("SELECT b0, b1, b2, b3 FROM photos WHERE id = ?", [pid]).fetchone() == bands("ab37e44b9d60944b")


# ---- the pick ---------------------------------------------------------------------

def test_the_pick_moves_to_a_sharper_later_frame_and_stays_unique(db):
    first, cid, pick1 = add_and_assign(db, "ab37e44b9d60944b", T0, sharpness=100.0)
    second, _, pick2 = add_and_assign(db, "ab37e44b9d60944b", T0 + 1, sharpness=50.0)
    third, _, pick3 = add_and_assign(db, "ab37e44b9d60944b", T0 + 2, sharpness=300.0)
    assert (pick1, pick2, pick3) == (True, False, True)
    picks = db.execute("SELECT id FROM photos WHERE cluster_id = ? AND is_pick = 1", [cid]).fetchall()
    assert picks == [(third,)]
    assert db.execute("SELECT pick_photo_id, size FROM clusters WHERE id = ?", [cid]).fetchone() == (third, 3)


def test_a_sharpness_tie_keeps_the_earliest_id_even_when_it_is_assigned_later(db):
    early = add(db, "ab37e44b9d60944b", T0, sharpness=5.0)  # queued first, analysed last
    late, cid, _ = add_and_assign(db, "ab37e44b9d60944b", T0 + 1, sharpness=5.0)
    assert assign(db, early, CFG) == (cid, True)
    assert db.execute("SELECT is_pick FROM photos WHERE id = ?", [late]).fetchone() == (0,)
    assert_one_sharpest_pick_per_cluster(db)


def test_a_frame_without_sharpness_never_takes_the_pick(db):
    _, cid, _ = add_and_assign(db, "ab37e44b9d60944b", T0, sharpness=0.0)
    _, _, pick = add_and_assign(db, "ab37e44b9d60944b", T0 + 1, sharpness=None)
    assert pick is False
    assert_one_sharpest_pick_per_cluster(db)


def test_assigning_a_photo_again_does_not_count_it_twice_or_leave_two_picks(db):
    a, cid, _ = add_and_assign(db, "ab37e44b9d60944b", T0, sharpness=1.0)
    b, _, _ = add_and_assign(db, "ab37e44b9d60944b", T0 + 1, sharpness=9.0)
    assert assign(db, b, CFG) == (cid, True)
    db.execute("UPDATE photos SET sharpness = 0.5 WHERE id = ?", [b])
    assert assign(db, b, CFG) == (cid, False)
    assert db.execute("SELECT pick_photo_id, size FROM clusters WHERE id = ?", [cid]).fetchone() == (a, 2)
    assert_one_sharpest_pick_per_cluster(db)


def test_a_photo_whose_hash_is_cleared_leaves_its_cluster(db):
    a, cid, _ = add_and_assign(db, "ab37e44b9d60944b", T0)
    db.execute("UPDATE photos SET phash = NULL WHERE id = ?", [a])
    assert assign(db, a, CFG) == (None, False)
    assert db.execute("SELECT count(*) FROM clusters").fetchone()[0] == 0


def test_a_failure_midway_rolls_back_so_there_is_never_a_second_pick(db, monkeypatch):
    first, cid, _ = add_and_assign(db, "ab37e44b9d60944b", T0, sharpness=1.0)
    sharper = add(db, "ab37e44b9d60944b", T0 + 1, sharpness=9.0)
    real_execute = db.execute

    def crash_on_pick_move(sql, params=None):
        if sql.startswith("UPDATE clusters SET pick_photo_id"):
            raise sqlite3.OperationalError("disk I/O error")
        return real_execute(sql, params)

    monkeypatch.setattr(db, "execute", crash_on_pick_move)
    with pytest.raises(sqlite3.OperationalError):
        assign(db, sharper, CFG)
    monkeypatch.undo()
    assert db.execute("SELECT id FROM photos WHERE is_pick = 1").fetchall() == [(first,)]
    assert db.execute("SELECT cluster_id FROM photos WHERE id = ?", [sharper]).fetchone() == (None,)
    assert db.execute("SELECT pick_photo_id, size FROM clusters").fetchall() == [(first, 1)]


def test_inside_the_callers_transaction_assign_commits_or_rolls_back_with_it():
    # The service's connection: autocommit mode, assign called inside store()'s transaction.
    db = sqlite_utils.Database(sqlite3.connect(":memory:", isolation_level=None))
    migrations.apply(db)
    first = add(db, "ab37e44b9d60944b", T0)
    with pytest.raises(RuntimeError):
        with db.atomic():
            assign(db, first, CFG)
            raise RuntimeError("store() failed after clustering")
    assert db.execute("SELECT count(*) FROM clusters").fetchone()[0] == 0
    assert db.execute("SELECT cluster_id, is_pick FROM photos").fetchall() == [(None, 0)]
    with db.atomic():
        cid, pick = assign(db, first, CFG)
    assert db.execute("SELECT cluster_id, is_pick FROM photos").fetchall() == [(cid, 1)]


# ---- against a brute-force reference ----------------------------------------------

def test_random_bursts_cluster_exactly_as_a_brute_force_scan_would(db):
    rng = random.Random(7)
    photos = []  # (hash, ts, sharpness)
    t = T0
    for _ in range(60):
        base = rng.getrandbits(64)
        t += rng.uniform(0, 400)
        for _ in range(rng.randint(1, 6)):
            h = base
            for b in rng.sample(range(64), rng.randint(0, 14)):
                h ^= 1 << b
            photos.append((f"{h:016x}", t + rng.uniform(-150, 150), rng.choice([None, *range(20)])))
    rng.shuffle(photos)

    expected_of: dict[int, int] = {}  # photo index -> index of the cluster's first photo
    for i, (h, ts, _) in enumerate(photos):
        cands = [(hamming(h, photos[j][0]), abs(ts - photos[j][1]), j) for j in range(i)
                 if hamming(h, photos[j][0]) <= 10 and abs(ts - photos[j][1]) <= 120]
        expected_of[i] = expected_of[min(cands)[2]] if cands else i

    ids, got_of = [], {}
    for i, (h, ts, s) in enumerate(photos):
        pid, cid, _ = add_and_assign(db, h, ts, s)
        ids.append(pid)
        got_of[i] = cid
    # Same partition (cluster ids are assigned in order, so map first members).
    first_cluster = {i: got_of[i] for i in range(len(photos)) if expected_of[i] == i}
    assert all(got_of[i] == first_cluster[expected_of[i]] for i in range(len(photos)))
    assert len(first_cluster) < len(photos)  # some bursts did form
    assert_one_sharpest_pick_per_cluster(db)


# ---- real hashes ----------------------------------------------------------------------

def _exif_ts(s: str) -> float:
    return datetime.strptime(s, "%Y:%m:%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def test_the_real_sony_burst_shares_a_cluster_and_other_scenes_do_not(db):
    # The pHashes and DateTimeOriginal of a real Sony A55 burst and two other scenes;
    # sharpness is each frame's variance of Laplacian.
    frames = [
        ("SonySLT-A55__DSC3755", "ab37e44b9d60944b", "2022:01:25 12:00:09", 311.9),
        ("SonySLT-A55__DSC3756", "ab37e44b9d60944b", "2022:01:25 12:00:18", 275.4),
        ("SonySLT-A55__DSC3757", "ab37e44b9d60944b", "2022:01:25 12:00:26", 275.2),
        ("SonyA6400_DSC00007", "c125621b1bec3ed9", "2024:07:19 09:14:31", 147.9),
        ("SonyA6400_DSC00008", "c125625b1be43ed9", "2024:07:19 09:14:43", 148.8),
        ("SonyDSC-P5_DSC00001", "eb94c0c99462973f", "2023:07:11 17:21:37", 21.2),
        ("SonyDSC-H9", "d4f0a956430e99bb", "2012:09:03 10:46:34", 137.8),
    ]
    got = {name: add_and_assign(db, h, _exif_ts(when), s) for name, h, when, s in frames}
    cluster_of = {name: v[1] for name, v in got.items()}
    assert cluster_of["SonySLT-A55__DSC3755"] == cluster_of["SonySLT-A55__DSC3756"] == cluster_of["SonySLT-A55__DSC3757"]
    assert cluster_of["SonyA6400_DSC00007"] == cluster_of["SonyA6400_DSC00008"]
    assert len(set(cluster_of.values())) == 4
    picks = {name for name, (pid, _, _) in got.items()
             if db.execute("SELECT is_pick FROM photos WHERE id = ?", [pid]).fetchone()[0]}
    assert picks == {"SonySLT-A55__DSC3755", "SonyA6400_DSC00008", "SonyDSC-P5_DSC00001", "SonyDSC-H9"}


def test_the_same_real_scenes_placed_in_one_window_still_stay_apart(db):
    # Capture time cannot be what keeps them apart here: only the hash can.
    hashes = ["ab37e44b9d60944b", "c125621b1bec3ed9", "eb94c0c99462973f", "d4f0a956430e99bb"]
    clusters = [add_and_assign(db, h, T0 + i)[1] for i, h in enumerate(hashes)]
    assert len(set(clusters)) == 4


# ---- the query plan ---------------------------------------------------------------------

def _plan(db) -> list[str]:
    [(sql, params)] = cluster.candidate_queries("ab37e44b9d60944b", T0, CFG, max_variables=999)
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()]


def _assert_band_index_plan(plan: list[str]) -> None:
    searches = [line for line in plan if "photos" in line]
    assert not any(line.startswith("SCAN") for line in searches), plan
    for i in range(4):
        assert f"SEARCH photos USING INDEX photos_b{i} (b{i}=? AND captured_ts>? AND captured_ts<?)" in searches, plan
    assert len(searches) == 4, plan


def test_the_lookup_searches_the_band_indexes_with_the_time_window(db):
    _assert_band_index_plan(_plan(db))


def test_the_lookup_keeps_the_band_indexes_once_the_planner_has_statistics(db):
    rng = random.Random(1)
    rows = []
    for i in range(5000):
        h = f"{rng.getrandbits(64):016x}"
        rows.append((f"/p/{i}", h, *bands(h), T0 + rng.uniform(-1e7, 1e7), 1.0, 1))
    db.conn.executemany(
        "INSERT INTO photos (original_path, kind, state, queued_at, updated_at, phash, b0, b1, b2, b3,"
        " captured_ts, sharpness, cluster_id) VALUES (?, 'jpeg', 'done', 0, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("ANALYZE")
    _assert_band_index_plan(_plan(db))


def test_a_sparse_window_is_read_whole_and_a_crowded_one_through_the_bands(db, monkeypatch):
    # About the choice between the two ways, so the choice is the module's own in both runs.
    monkeypatch.setattr(cluster, "WINDOW_SCAN", WINDOW_SCAN)
    base = "ab37e44b9d60944b"
    far = f"{int(base, 16) ^ 0xFFFFFFFFFFFFFFFF:016x}"            # no band within reach
    for i in range(cluster.WINDOW_SCAN):
        add_and_assign(db, far, T0 + i * 0.5)
    sparse = list(cluster._candidates(db, base, T0 + 1, CFG))
    add_and_assign(db, far, T0 + 40)
    crowded = list(cluster._candidates(db, base, T0 + 1, CFG))
    assert len(sparse) == cluster.WINDOW_SCAN and crowded == []


def test_a_window_crowded_with_near_identical_frames_is_looked_up_in_bounded_work(db):
    base = "ab37e44b9d60944b"
    for i in range(300):                                   # a tripod time-lapse: one pHash, one window
        add_and_assign(db, base, T0 + i * 0.1)
    rows = sum(len(db.execute(sql, params).fetchall())
               for sql, params in cluster.candidate_queries(base, T0 + 30.05, CFG))
    assert rows <= 4 * cluster.CANDIDATES_PER_BAND
    pid, cid, _ = add_and_assign(db, base, T0 + 30.05)
    assert db.execute("SELECT count(DISTINCT cluster_id) FROM photos").fetchone()[0] == 1
