"""People in the database: each person's running vector sum always equals the sum of their faces'."""
from __future__ import annotations

import numpy as np

from starsort.store import people, photos

RNG = np.random.default_rng(3)


def _face(db, photo_id: int) -> tuple[int, np.ndarray]:
    fid = db.execute("INSERT INTO faces (photo_id, x1, y1, x2, y2) VALUES (?, 0, 0, 100, 100)",
                     (photo_id,)).lastrowid
    v = RNG.normal(size=128).astype(np.float32)
    v /= np.linalg.norm(v)
    people.add_vector(db, fid, "test", v.astype("<f4").tobytes())
    return fid, v


def _check(db) -> None:
    for pid, vsum, n in db.execute("SELECT id, vsum, n FROM people").fetchall():
        members = [people._vector(db, f) for (f,) in db.execute(
            "SELECT face_id FROM face_people WHERE person_id = ?", (pid,))]
        assert n == len(members)
        if members:
            assert np.allclose(np.frombuffer(vsum, "<f8"), np.sum(members, axis=0), atol=1e-5)


def test_a_persons_vector_sum_follows_every_assignment_merge_and_removal(fresh_db):
    db = fresh_db
    pid = photos.queue(db, original="/in/A.JPG", pair=None, kind="jpeg", size=1, mtime_ns=1, now=1.0)
    faces = [_face(db, pid)[0] for _ in range(6)]
    a, b = people.new_person(db), people.new_person(db, "Bea")
    for f in faces[:3]:
        people.assign(db, f, a, confirmed=False)
    for f in faces[3:]:
        people.assign(db, f, b, confirmed=True)
    _check(db)
    people.assign(db, faces[0], b, confirmed=True)        # moved between people
    people.unassign(db, faces[1])
    people.not_person(db, faces[3], b)
    _check(db)
    people.move_faces(db, a, b)                           # a merge
    _check(db)
    assert db.execute("SELECT n FROM people WHERE id = ?", (a,)).fetchone()[0] == 0
    people.forget_faces_of(db, pid)                       # the photo analysed again
    _check(db)
    assert db.execute("SELECT count(*) FROM face_people").fetchone()[0] == 0


def test_the_vector_cache_appends_new_faces_and_reloads_after_a_deletion(fresh_db):
    db = fresh_db
    pid = photos.queue(db, original="/in/B.JPG", pair=None, kind="jpeg", size=1, mtime_ns=1, now=1.0)
    cache = people.VectorCache()
    first = [_face(db, pid)[0] for _ in range(3)]
    assert list(cache.current(db).face_ids) == first
    more = [_face(db, pid)[0] for _ in range(2)]
    assert list(cache.current(db).face_ids) == first + more
    db.execute("DELETE FROM face_vectors WHERE face_id = ?", (first[1],))
    v = cache.current(db)
    assert list(v.face_ids) == [first[0], first[2], *more] and v.matrix.shape == (4, 128)


def test_a_new_face_model_drops_the_old_vectors_keeps_who_each_face_is_and_sums_the_new_ones(fresh_db):
    db = fresh_db
    pid = photos.queue(db, original="/in/C.JPG", pair=None, kind="jpeg", size=1, mtime_ns=1, now=1.0)
    db.execute("UPDATE photos SET state = 'done', current_path = '/lib/5-stars/C.JPG' WHERE id = ?", (pid,))
    faces = [_face(db, pid)[0] for _ in range(3)]            # made by the model called "test"
    db.execute("UPDATE faces SET landmarks = '[[1, 1], [2, 1], [1.5, 2], [1, 3], [2, 3]]'")
    anna = people.new_person(db, "Anna")
    for f in faces[:2]:
        people.assign(db, f, anna, confirmed=True)
    assert people.without_vectors(db) is None

    assert people.drop_other_models(db, "new-model") == 3
    assert db.execute("SELECT count(*) FROM face_vectors").fetchone()[0] == 0
    assert people.assignments(db) == {faces[0]: (anna, True), faces[1]: (anna, True)}
    assert db.execute("SELECT n, vsum FROM people WHERE id = ?", (anna,)).fetchone() == (0, None)
    todo = people.without_vectors(db)
    assert todo["id"] == pid and sorted(f for f, _ in todo["faces"]) == faces

    new = []
    for f in faces:                                          # the background embedding, new model
        v = RNG.normal(size=128).astype(np.float32)
        v /= np.linalg.norm(v)
        people.add_vector(db, f, "new-model", v.astype("<f4").tobytes())
        new.append(v)
    n, vsum = db.execute("SELECT n, vsum FROM people WHERE id = ?", (anna,)).fetchone()
    assert n == 2 and np.allclose(np.frombuffer(vsum, "<f8"), new[0] + new[1], atol=1e-5)
    assert people.drop_other_models(db, "new-model") == 0


def test_the_service_knows_the_model_the_workers_embed_with():
    from starsort.analysis import embed
    assert people.MODEL == embed.SFace.name


def _unit(*parts: tuple[int, float]) -> np.ndarray:
    v = np.zeros(128, np.float32)
    for axis, value in parts:
        v[axis] = value
    return v / np.linalg.norm(v)


def test_find_reaches_a_persons_other_pose_through_a_sure_match_and_no_stranger_at_the_same_distance():
    # The reference looks along axis 0. A sure match (distance 0.25) leans towards axis 1;
    # the same person in another pose leans further that way (0.45 from the reference, close
    # to the sure match); a stranger is as far from the reference (0.45) but leans towards
    # axis 2, away from the sure match.
    def at(distance: float, axis: int) -> np.ndarray:
        c = 1 - distance
        return _unit((0, c), (axis, float(np.sqrt(1 - c * c))))
    ref, sure, other_pose, stranger = at(0, 1), at(0.25, 1), at(0.45, 1), at(0.45, 2)
    near_stranger = at(0.41, 2)              # just outside the threshold, on the stranger's side
    vectors = people.Vectors(np.array([11, 12, 13, 14]), np.array([1, 2, 3, 4]),
                             np.stack([sure, other_pose, stranger, near_stranger]))
    alone = people.find(vectors, ref, 0.40)
    assert [m.photo_id for m in alone] == [1]
    expanded = people.find(vectors, ref, 0.40, expand=0.35)
    assert [m.photo_id for m in expanded] == [1, 2]
    # The sure match keeps the nearer of its two distances; the other pose is near the average.
    assert expanded[0].distance <= alone[0].distance and expanded[1].distance < 0.40
    # With no expansion, or no sure match, the reference alone decides.
    assert people.find(vectors, ref, 0.40, expand=0.0) == alone
    assert people.find(vectors, ref, 0.40, expand=0.2) == alone
    # A person's confirmed faces are already their other poses: searched as they are.
    both = np.stack([ref, stranger])
    assert people.find(vectors, both, 0.40, expand=0.35) == people.find(vectors, both, 0.40)
