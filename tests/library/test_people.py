"""People: grouping faces, and the photographer's corrections that nothing automatic undoes.

Photos are filed in process with faces (tests/helpers.filed); each face is given a vector
near its person's direction, as SFace gives (the embedding itself is tested on real photos
in tests/analysis/test_embed.py and end to end in tests/cli/test_people.py).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from starsort.library import people, xmp
from starsort.store import people as store

from ..helpers import filed

RNG = np.random.default_rng(7)
DIRECTIONS = {who: RNG.normal(size=128) for who in ("anna", "ben", "cleo")}


def _vector(who: str, spread: float = 0.35) -> bytes:
    v = DIRECTIONS[who] / np.linalg.norm(DIRECTIONS[who]) + spread * RNG.normal(size=128) / np.sqrt(128)
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def _photo(lib, folders, name: str, *who: str) -> list[int]:
    """A filed photo with one sharp 100 px face per person named; returns its face ids."""
    pid = filed(lib, folders, name, pair=False, scores=[50.0] * len(who), widths=[100.0] * len(who))
    ids = [r[0] for r in lib.call(lambda db: db.execute("SELECT id FROM faces WHERE photo_id = ? ORDER BY id",
                                                        (pid,)).fetchall())]
    for fid, w in zip(ids, who):
        lib.call(lambda db, f=fid, w=w: store.add_vector(db, f, "test", _vector(w)))
    return ids


def _group(lib) -> dict:
    return lib.call(lambda db: people.group(db, lib.cfg))


def _person_of(lib, face_id: int) -> int | None:
    row = lib.call(lambda db: db.execute("SELECT person_id FROM face_people WHERE face_id = ?",
                                         (face_id,)).fetchone())
    return row[0] if row else None


def test_faces_of_one_person_are_grouped_together_and_apart_from_another(lib, folders):
    anna = [_photo(lib, folders, f"A{i}", "anna")[0] for i in range(4)]
    ben = [_photo(lib, folders, f"B{i}", "ben")[0] for i in range(3)]
    out = _group(lib)
    assert out["new_people"] == 2 and out["grouped"] == 7
    assert len({_person_of(lib, f) for f in anna}) == 1
    assert len({_person_of(lib, f) for f in ben}) == 1
    assert _person_of(lib, anna[0]) != _person_of(lib, ben[0])


def test_two_faces_of_one_photo_are_never_one_person_however_alike(lib, folders):
    twins = _photo(lib, folders, "T", "anna", "anna")
    [other] = _photo(lib, folders, "A1", "anna")
    _group(lib)
    # One of the two joins the Anna of the other photo; the second face of that photo cannot.
    assert _person_of(lib, other) in (_person_of(lib, twins[0]), _person_of(lib, twins[1]))
    assert _person_of(lib, twins[0]) != _person_of(lib, twins[1])


def test_a_new_face_joins_the_named_person_its_confirmed_faces_match(lib, folders):
    first = [_photo(lib, folders, f"A{i}", "anna")[0] for i in range(2)]
    _group(lib)
    pid = _person_of(lib, first[0])
    people.name(lib, pid, "Anna")
    later = _photo(lib, folders, "A9", "anna")[0]
    stranger = _photo(lib, folders, "C1", "cleo")[0]
    out = _group(lib)
    assert out["named"] == 1
    assert _person_of(lib, later) == pid and _person_of(lib, stranger) != pid


def test_a_confirmed_face_is_never_moved_by_a_later_grouping(lib, folders):
    a = [_photo(lib, folders, f"A{i}", "anna")[0] for i in range(3)]
    b = [_photo(lib, folders, f"B{i}", "ben")[0] for i in range(3)]
    _group(lib)
    anna, ben = _person_of(lib, a[0]), _person_of(lib, b[0])
    # The photographer says one of "Ben's" faces is Anna's (a look-alike the machine missed).
    people.assign_face(lib, b[2], anna)
    for i in range(5):                                   # many more Ben photos arrive
        _photo(lib, folders, f"B{i + 10}", "ben")
    _group(lib)
    lib.call(lambda db: people.group(db, lib.cfg))
    assert _person_of(lib, b[2]) == anna
    confirmed = lib.call(lambda db: db.execute("SELECT confirmed FROM face_people WHERE face_id = ?",
                                               (b[2],)).fetchone()[0])
    assert confirmed == 1 and _person_of(lib, b[0]) == ben


def test_not_this_person_keeps_the_face_out_of_that_person_for_good(lib, folders):
    a = [_photo(lib, folders, f"A{i}", "anna")[0] for i in range(3)]
    _group(lib)
    pid = _person_of(lib, a[0])
    people.name(lib, pid, "Anna")
    people.not_this_person(lib, a[2], pid)
    assert _person_of(lib, a[2]) is None
    _group(lib)
    assert _person_of(lib, a[2]) != pid


def test_merge_and_split_are_the_photographers_and_confirm_the_faces(lib, folders):
    a = [_photo(lib, folders, f"A{i}", "anna")[0] for i in range(2)]
    a2 = [_photo(lib, folders, f"D{i}", "anna")[0] for i in range(2)]
    _group(lib)
    p1 = _person_of(lib, a[0])
    people.name(lib, p1, "Anna")
    if _person_of(lib, a2[0]) != p1:
        people.merge(lib, "Anna", _person_of(lib, a2[0]))
    assert {_person_of(lib, f) for f in a + a2} == {p1}
    out = people.split(lib, "Anna", [a2[1]], "Anna's sister")
    assert _person_of(lib, a2[1]) == out["person_id"] != p1
    listing = {p["name"]: p for p in lib.call(store.listing)}
    assert all(f["confirmed"] for f in listing["Anna"]["faces"])
    assert [f["face_id"] for f in listing["Anna's sister"]["faces"]] == [a2[1]]
    with pytest.raises(people.Refused):
        people.name(lib, out["person_id"], "Anna")      # a name is one person's
    _group(lib)
    assert _person_of(lib, a2[1]) == out["person_id"]


def test_a_name_is_written_to_the_photos_xmp_as_a_face_region_and_read_back_by_exiv2(lib, folders):
    [face] = _photo(lib, folders, "A1", "anna")
    _photo(lib, folders, "A2", "anna")
    _group(lib)
    people.name(lib, _person_of(lib, face), "Anna Example")
    photo = lib.call(lambda db: db.execute("SELECT p.current_path, p.width, p.height, f.x1, f.y1, f.x2, f.y2"
                                           " FROM faces f JOIN photos p ON p.id = f.photo_id WHERE f.id = ?",
                                           (face,)).fetchone())
    path, w, h, x1, y1, x2, y2 = photo
    [sidecar] = [s for s in xmp.sidecar_paths(path, lib.cfg.xmp.sidecar_naming) if s.exists()]
    got = xmp.read_people(sidecar)
    assert got["persons"] == ["Anna Example"]
    [region] = got["regions"]
    assert region["name"] == "Anna Example"
    assert region["x"] == pytest.approx((x1 + x2) / 2 / w, abs=1e-4)
    assert region["w"] == pytest.approx((x2 - x1) / w, abs=1e-4)
    assert xmp.read_rating(sidecar) == 5                     # the rating stays
    people.forget(lib)
    assert xmp.read_people(sidecar) == {"regions": [], "persons": []}
    assert lib.call(lambda db: db.execute("SELECT count(*) FROM face_vectors").fetchone()[0]) == 0


def test_a_face_seen_alone_is_found_again_by_the_next_face_of_that_person(lib, folders):
    [first] = _photo(lib, folders, "A1", "anna")
    _photo(lib, folders, "C1", "cleo")
    _group(lib)                                          # one face each: nothing to suggest yet
    assert {p["name"] for p in lib.call(store.listing)} == set()
    [second] = _photo(lib, folders, "A2", "anna")
    lib.call(lambda db: people.group(db, lib.cfg, since_face=first + 1))    # only the new face is read
    assert _person_of(lib, second) == _person_of(lib, first) is not None
    [anna] = lib.call(store.listing)
    assert {f["face_id"] for f in anna["faces"]} == {first, second}


def test_an_archive_is_grouped_a_batch_at_a_time_and_every_face_is_placed(lib, folders, monkeypatch):
    monkeypatch.setattr(people, "BATCH", 4)
    faces = [(_photo(lib, folders, f"{who[0].upper()}{i}", who)[0], who)
             for i in range(5) for who in ("anna", "ben", "cleo")]
    out, _ = people.group_new(lib, 0)
    assert out["grouped"] == 15
    persons = {who: {_person_of(lib, f) for f, w in faces if w == who} for who in ("anna", "ben", "cleo")}
    assert all(len(p) == 1 and None not in p for p in persons.values()), persons
    assert len(set().union(*persons.values())) == 3


def _snapshot(cache):
    ids, sums, n = cache.suggested()
    return (ids.tolist(), np.round(sums, 9).tolist(), n.tolist(),
            [(pid, np.round(v, 6).tolist()) for pid, v in cache.named()])


def test_the_people_kept_in_memory_stay_the_same_as_the_database_through_every_action(lib, folders):
    kept = store.PeopleCache()

    def same_as_a_fresh_read() -> None:
        def check(db):
            kept.sync(db)
            fresh = store.PeopleCache()
            fresh.sync(db)
            assert _snapshot(kept) == _snapshot(fresh)
        lib.call(check)

    a = [_photo(lib, folders, f"A{i}", "anna")[0] for i in range(3)]
    b = [_photo(lib, folders, f"B{i}", "ben")[0] for i in range(3)]
    lib.call(lambda db: people.group(db, lib.cfg, cache=kept))
    same_as_a_fresh_read()
    people.name(lib, _person_of(lib, a[0]), "Anna")
    same_as_a_fresh_read()
    c = [_photo(lib, folders, f"C{i}", "cleo")[0] for i in range(2)]
    lib.call(lambda db: people.group(db, lib.cfg, cache=kept))
    same_as_a_fresh_read()
    people.merge(lib, "Anna", _person_of(lib, b[0]))
    same_as_a_fresh_read()
    people.split(lib, "Anna", [b[1]], "Ben")
    same_as_a_fresh_read()
    people.not_this_person(lib, c[0], _person_of(lib, c[0]))
    same_as_a_fresh_read()
    people.forget(lib)
    same_as_a_fresh_read()
    assert _snapshot(kept) == ([], [], [], [])


def test_grouping_a_batch_reads_back_only_the_people_it_changed_not_everyone(lib, folders):
    kept = store.PeopleCache()
    for i in range(12):
        _photo(lib, folders, f"S{i}", ("anna", "ben", "cleo")[i % 3])
    lib.call(lambda db: people.group(db, lib.cfg, cache=kept))
    lib.call(kept.sync)
    before = len(kept.suggested()[0])
    assert before == 3
    [face] = _photo(lib, folders, "A-new", "anna")
    issued: list[str] = []

    def group_traced(db):
        db.conn.set_trace_callback(issued.append)
        try:
            return people.group(db, lib.cfg, cache=kept)
        finally:
            db.conn.set_trace_callback(None)
    assert lib.call(group_traced)["grouped"] == 1
    # People rows read: only the one the new face joined (its running sum, to add the face).
    reads = [s for s in issued if re.search(r"FROM people\b(?!_)", s) and s.lstrip().startswith("SELECT")]
    assert reads == ["SELECT vsum, n FROM people WHERE id = ?"] or all("WHERE id = " in s for s in reads), reads
    assert len(reads) == 1, reads
    lib.call(kept.sync)
    assert len(kept.suggested()[0]) == before
