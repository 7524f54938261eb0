"""Who each face is: face vectors, people, and which person each face belongs to.

    face_vectors      one unit float32 vector per face, with its model's name
    people            named (by the photographer) or suggested (name NULL)
    face_people       face -> person; confirmed = the photographer's word
    face_not_person   "not this person": never put there again

Only the deciding thread writes these (through the one writer); the CLI and
the page read them. The arithmetic on the vectors is in library/people.py.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from sqlite_utils import Database

from .db import transaction

DIMS = 128


@dataclass
class Vectors:
    """Every embedded face of the library as one float32 matrix, row i = face_ids[i]."""
    face_ids: np.ndarray         # int64
    photo_ids: np.ndarray        # int64
    matrix: np.ndarray           # float32, (n, DIMS), unit rows

    def __len__(self) -> int:
        return len(self.face_ids)


@dataclass
class Match:
    face_id: int
    photo_id: int
    distance: float


def distances(vectors: Vectors, query: np.ndarray) -> np.ndarray:
    """Cosine distance of every face to `query` (one vector, or several: the nearest counts)."""
    if not len(vectors):
        return np.zeros(0, np.float32)
    q = np.atleast_2d(np.asarray(query, np.float32))
    return 1.0 - (vectors.matrix @ q.T).max(axis=1)


def find(vectors: Vectors, query: np.ndarray, threshold: float, expand: float | None = None) -> list[Match]:
    """Every photo with a face within `threshold` of `query`, its nearest face, closest first:
    one matrix product over every face, exact, with nothing to build beforehand.

    With `expand` and a single query vector, the faces within `expand` of it (sure matches)
    are averaged with it into a second query, which then decides: a face matches if it is
    within `threshold` of that average (a sure match, by the nearer of the two). One reference
    photo shows a person in one light and pose; the sure matches show them in others, so
    their average lies nearer the person's other photos and farther from a stranger who
    merely resembles the reference. On the tuning part of the labelled set this found 87 % of
    the photos with no false match, against 68 % for the reference alone
    (bench/people_quality.py)."""
    d = distances(vectors, query)
    q = np.atleast_2d(np.asarray(query, np.float32))
    # A person's confirmed faces (several query rows) are already their other lights and poses.
    if expand is not None and len(vectors) and len(q) == 1:
        sure = d < min(expand, threshold)
        if sure.any():
            mean = q[0] + vectors.matrix[sure].sum(axis=0)
            mean /= np.linalg.norm(mean) or 1.0
            expanded = distances(vectors, mean)
            d = np.where(sure, np.minimum(d, expanded), expanded)
    hits = np.nonzero(d < threshold)[0]
    best: dict[int, Match] = {}
    for i in hits[np.argsort(d[hits], kind="stable")]:
        pid = int(vectors.photo_ids[i])
        if pid not in best:
            best[pid] = Match(int(vectors.face_ids[i]), pid, float(d[i]))
    return sorted(best.values(), key=lambda m: m.distance)


# The embedder in use (analysis.embed.SFace.name; a test checks they agree). Named here
# so the service, which never loads the model, knows which stored vectors are current.
MODEL = "sface-2021dec-int8bq"


def add_vector(db: Database, face_id: int, model: str, vector: bytes) -> None:
    """Store a face's vector; a face already given to a person moves that person's running sum
    with it (a face embedded after the photographer placed it, or embedded again)."""
    old = _vector(db, face_id)
    db.execute("INSERT OR REPLACE INTO face_vectors (face_id, model, vector) VALUES (?, ?, ?)",
               (face_id, model, vector))
    row = db.execute("SELECT person_id FROM face_people WHERE face_id = ?", (face_id,)).fetchone()
    if row is not None:
        _shift(db, row[0], old, -1)
        _shift(db, row[0], np.frombuffer(vector, "<f4").astype(np.float64), 1)


def drop_other_models(db: Database, model: str = MODEL) -> int:
    """Vectors made by another model than `model` are dropped (vectors of two models cannot be
    compared), and every person's running sum is made again from the vectors that stay. The
    assignments stay: who a face is does not depend on the model. The dropped faces are
    embedded again in the background, like faces filed before there were embeddings, and join
    their people's sums as they come. Returns how many were dropped."""
    n = db.execute("SELECT count(*) FROM face_vectors WHERE model != ?", (model,)).fetchone()[0]
    if not n:
        return 0
    with transaction(db):
        db.execute("DELETE FROM face_vectors WHERE model != ?", (model,))
        sums: dict[int, list] = {}
        for pid, blob in db.execute("SELECT fp.person_id, v.vector FROM face_people fp"
                                    " JOIN face_vectors v ON v.face_id = fp.face_id"):
            entry = sums.setdefault(pid, [np.zeros(DIMS), 0])
            entry[0] += np.frombuffer(blob, "<f4")
            entry[1] += 1
        db.execute("UPDATE people SET vsum = NULL, n = 0")
        for pid, (total, count) in sums.items():
            db.execute("UPDATE people SET vsum = ?, n = ? WHERE id = ?",
                       (np.asarray(total, "<f8").tobytes(), count, pid))
    return n


class VectorCache:
    """The library's face vectors as one matrix, kept in memory by a long-lived reader (the
    review page's server, for `people find` while the service runs) and brought up to date
    before each query: new faces are appended (a read of the rows after the last face id);
    a deletion (a photo analysed again, `people forget`) makes it read everything again."""

    def __init__(self) -> None:
        self.vectors = Vectors(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, DIMS), np.float32))

    def current(self, db: Database) -> Vectors:
        count, top = db.execute("SELECT count(*), coalesce(max(face_id), 0) FROM face_vectors").fetchone()
        v = self.vectors
        last = int(v.face_ids[-1]) if len(v) else 0
        if count == len(v) and top == last:
            return v
        if top > last and count - len(v) == db.execute("SELECT count(*) FROM face_vectors WHERE face_id > ?",
                                                        (last,)).fetchone()[0]:
            more = load_vectors(db, after=last)
            self.vectors = Vectors(np.concatenate([v.face_ids, more.face_ids]),
                                   np.concatenate([v.photo_ids, more.photo_ids]),
                                   np.concatenate([v.matrix, more.matrix]))
        else:
            self.vectors = load_vectors(db)
        return self.vectors


def load_vectors(db: Database, model: str | None = None, face_ids: Iterable[int] | None = None,
                 after: int | None = None) -> Vectors:
    """The library's face vectors (of one model, of the given faces, or after a face id) as a matrix."""
    sql = ("SELECT v.face_id, f.photo_id, v.vector FROM face_vectors v JOIN faces f ON f.id = v.face_id")
    args: list[Any] = []
    where = []
    if after is not None:
        where.append("v.face_id > ?")
        args.append(after)
    if model is not None:
        where.append("v.model = ?")
        args.append(model)
    if face_ids is not None:
        ids = list(face_ids)
        if not ids:
            return Vectors(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, DIMS), np.float32))
        where.append(f"v.face_id IN ({','.join('?' * len(ids))})")
        args += ids
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = db.execute(sql + " ORDER BY v.face_id", args).fetchall()
    if not rows:
        return Vectors(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, DIMS), np.float32))
    matrix = np.frombuffer(b"".join(r[2] for r in rows), "<f4").reshape(len(rows), -1).astype(np.float32)
    return Vectors(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64), matrix)


def without_vectors(db: Database, skip: tuple[int, ...] = ()) -> dict | None:
    """A filed photo with faces that have no vector (filed before embeddings existed, or their
    vectors were a former model's: `drop_other_models`), newest first: {"id", "current_path", "pair_path", "faces": [(face_id, landmarks)]}."""
    import json
    not_in = f" AND f.photo_id NOT IN ({','.join('?' * len(skip))})" if skip else ""
    row = db.execute(
        "SELECT f.photo_id FROM faces f LEFT JOIN face_vectors v ON v.face_id = f.id"
        " JOIN photos p ON p.id = f.photo_id"
        f" WHERE v.face_id IS NULL AND p.state = 'done' AND f.landmarks IS NOT NULL{not_in}"
        " ORDER BY f.photo_id DESC LIMIT 1", skip).fetchone()
    if row is None:
        return None
    photo = next(iter(db.query("SELECT id, current_path, pair_path FROM photos WHERE id = ?", [row[0]])))
    faces = [(fid, json.loads(lm)) for fid, lm in db.execute(
        "SELECT f.id, f.landmarks FROM faces f LEFT JOIN face_vectors v ON v.face_id = f.id"
        " WHERE f.photo_id = ? AND v.face_id IS NULL", (row[0],))]
    return {**photo, "faces": faces}


# ---- before a photo's faces are replaced (a new analysis) ----------------------------------------

def forget_faces_of(db: Database, photo_id: int) -> list[dict]:
    """Drop the vectors and assignments of a photo's faces before they are replaced; returns the
    confirmed assignments with their boxes, for `carry_over` to give to the new faces."""
    kept = [dict(zip(("box", "person_id"), ((r[0], r[1], r[2], r[3]), r[4]))) for r in db.execute(
        "SELECT f.x1, f.y1, f.x2, f.y2, fp.person_id FROM faces f JOIN face_people fp ON fp.face_id = f.id"
        " WHERE f.photo_id = ? AND fp.confirmed = 1", (photo_id,))]
    for (fid,) in db.execute("SELECT fp.face_id FROM face_people fp JOIN faces f ON f.id = fp.face_id"
                             " WHERE f.photo_id = ?", (photo_id,)).fetchall():
        unassign(db, fid)
    for table in ("face_vectors", "face_people", "face_not_person"):
        db.execute(f"DELETE FROM {table} WHERE face_id IN (SELECT id FROM faces WHERE photo_id = ?)", (photo_id,))
    return kept


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def carry_over(db: Database, photo_id: int, kept: list[dict]) -> None:
    """The photographer's confirmations follow their faces into a new analysis (same place)."""
    if not kept:
        return
    faces = db.execute("SELECT id, x1, y1, x2, y2 FROM faces WHERE photo_id = ?", (photo_id,)).fetchall()
    for k in kept:
        best = max(faces, key=lambda f: _iou(k["box"], f[1:]), default=None)
        if best is not None and _iou(k["box"], best[1:]) >= 0.5:
            assign(db, best[0], k["person_id"], confirmed=True)


# ---- people and assignments ------------------------------------------------------------------------

def new_person(db: Database, name: str | None = None) -> int:
    return db.execute("INSERT INTO people (name, created_at) VALUES (?, ?)", (name, time.time())).lastrowid


def person_by_name(db: Database, name: str) -> dict | None:
    return next(iter(db.query("SELECT * FROM people WHERE name = ?", [name])), None)


def person(db: Database, person_id: int) -> dict | None:
    return next(iter(db.query("SELECT * FROM people WHERE id = ?", [person_id])), None)


def _vector(db: Database, face_id: int) -> np.ndarray | None:
    row = db.execute("SELECT vector FROM face_vectors WHERE face_id = ?", (face_id,)).fetchone()
    return None if row is None else np.frombuffer(row[0], "<f4").astype(np.float64)


def _shift(db: Database, person_id: int | None, vec: np.ndarray | None, sign: int) -> None:
    """Add (sign 1) or take away (-1) one face's vector from a person's running sum."""
    if person_id is None or vec is None:
        return
    row = db.execute("SELECT vsum, n FROM people WHERE id = ?", (person_id,)).fetchone()
    if row is None:
        return
    total = np.zeros_like(vec) if row[0] is None else np.frombuffer(row[0], "<f8").copy()
    n = max(0, row[1] + sign)
    total = total + sign * vec if n else np.zeros_like(vec)
    db.execute("UPDATE people SET vsum = ?, n = ? WHERE id = ?", (total.astype("<f8").tobytes(), n, person_id))


class PeopleCache:
    """What grouping compares new faces with, kept in memory between batches: every suggested
    person's running sum and count (one row of a matrix each), and every named person's
    confirmed vectors. Brought up to date before each use from `people_changes` (filled by
    triggers): only the people changed since are read again, so a batch costs the new faces
    and the people they touch, not a read of everyone.

    Held by the one writer (the service's `Library`); used only inside its calls.
    """

    def __init__(self) -> None:
        self.seq = -1                                   # -1: never loaded
        self._row: dict[int, int] = {}                  # person id -> row of the matrices
        self._ids = np.zeros(0, np.int64)
        # float32: the product needs no more, and a million faces' people fit in about 100 MB
        # (the exact float64 sums stay in the database).
        self._sums = np.zeros((0, DIMS), np.float32)
        self._n = np.zeros(0)
        self._suggested = np.zeros(0, bool)             # unnamed, with faces
        self._named: dict[int, np.ndarray] = {}         # named person -> confirmed vectors

    def reset(self) -> None:
        """Forget everything (after a failed write, which may have been rolled back)."""
        self.__init__()

    def sync(self, db: Database) -> None:
        top = db.execute("SELECT coalesce(max(seq), 0) FROM people_changes").fetchone()[0]
        if self.seq < 0 or top < self.seq:
            self.reset()
            changed = [r[0] for r in db.execute("SELECT id FROM people")]
        elif top == self.seq:
            return
        else:
            changed = [r[0] for r in db.execute("SELECT person_id FROM people_changes WHERE seq > ?",
                                                (self.seq,))]
        self._reload(db, changed)
        self.seq = top

    def _reload(self, db: Database, ids: list[int]) -> None:
        rows = {}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            for pid, name, vsum, n in db.execute(
                    f"SELECT id, name, vsum, n FROM people WHERE id IN ({','.join('?' * len(part))})", part):
                rows[pid] = (name, vsum, n)
        new = [pid for pid in ids if pid not in self._row]
        if new:
            self._grow(len(self._row) + len(new))
            for pid in new:
                k = self._row[pid] = len(self._row)
                self._ids[k] = pid
        for pid in ids:
            r = self._row[pid]
            name, vsum, n = rows.get(pid, (None, None, 0))
            gone = pid not in rows
            self._n[r] = 0 if gone else n
            self._sums[r] = np.frombuffer(vsum, "<f8") if vsum is not None and not gone else 0.0
            self._suggested[r] = not gone and name is None and n > 0
            self._named.pop(pid, None)
            if not gone and name is not None:
                vecs = confirmed_vectors(db, pid)
                if len(vecs):
                    self._named[pid] = vecs

    def _grow(self, rows: int) -> None:
        """Room for `rows` people; doubling, so adding people one batch at a time stays cheap."""
        have = len(self._ids)
        if rows <= have:
            return
        cap = max(rows + rows // 2, 2 * have, 256)

        def more(a: np.ndarray) -> np.ndarray:
            b = np.zeros((cap,) + a.shape[1:], a.dtype)
            b[:have] = a
            return b
        self._ids, self._sums = more(self._ids), more(self._sums)
        self._n, self._suggested = more(self._n), more(self._suggested)

    def similarity(self, sums: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(suggested person ids, the average similarity of each cluster (its vector sum and
        size) to each of them): one float32 product against every row, then the suggested
        columns, so no copy of the people's matrix is made per batch."""
        used = len(self._row)
        m = self._suggested[:used]
        if not m.any() or not len(sums):
            return self._ids[:used][m], np.zeros((len(sums), int(m.sum())))
        dots = np.asarray(sums, np.float32) @ self._sums[:used].T
        cols = np.nonzero(m)[0]
        return self._ids[cols], dots[:, cols] / np.outer(sizes, self._n[cols])

    def suggested(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(person ids, their vector sums (float32), their counts) of the suggested people with faces."""
        m = self._suggested[:len(self._row)]
        return self._ids[:len(m)][m], self._sums[:len(m)][m], self._n[:len(m)][m]

    def named(self) -> list[tuple[int, np.ndarray]]:
        """(person id, their confirmed faces' vectors, else all their faces') of each named person."""
        return sorted(self._named.items())


def confirmed_vectors(db: Database, person_id: int) -> np.ndarray:
    """The vectors of a person's confirmed faces (else all their faces)."""
    ids = [r[0] for r in db.execute("SELECT face_id FROM face_people WHERE person_id = ? AND confirmed = 1",
                                    (person_id,))]
    if not ids:
        ids = [r[0] for r in db.execute("SELECT face_id FROM face_people WHERE person_id = ?", (person_id,))]
    return load_vectors(db, face_ids=ids).matrix


def has_face_in(db: Database, person_id: int, photo_ids: set[int]) -> bool:
    ids = list(photo_ids)
    return db.execute(
        "SELECT 1 FROM face_people fp JOIN faces f ON f.id = fp.face_id WHERE fp.person_id = ?"
        f" AND f.photo_id IN ({','.join('?' * len(ids))}) LIMIT 1", (person_id, *ids)).fetchone() is not None


def assign(db: Database, face_id: int, person_id: int, confirmed: bool) -> None:
    old = db.execute("SELECT person_id FROM face_people WHERE face_id = ?", (face_id,)).fetchone()
    if old is None or old[0] != person_id:
        vec = _vector(db, face_id)
        _shift(db, None if old is None else old[0], vec, -1)
        _shift(db, person_id, vec, 1)
    db.execute("INSERT INTO face_people (face_id, person_id, confirmed, at) VALUES (?, ?, ?, ?)"
               " ON CONFLICT(face_id) DO UPDATE SET person_id = excluded.person_id,"
               " confirmed = excluded.confirmed, at = excluded.at",
               (face_id, person_id, int(confirmed), time.time()))
    if confirmed:
        db.execute("DELETE FROM face_not_person WHERE face_id = ? AND person_id = ?", (face_id, person_id))


def unassign(db: Database, face_id: int) -> None:
    old = db.execute("SELECT person_id FROM face_people WHERE face_id = ?", (face_id,)).fetchone()
    if old is not None:
        _shift(db, old[0], _vector(db, face_id), -1)
    db.execute("DELETE FROM face_people WHERE face_id = ?", (face_id,))


def not_person(db: Database, face_id: int, person_id: int) -> None:
    db.execute("INSERT OR IGNORE INTO face_not_person (face_id, person_id) VALUES (?, ?)", (face_id, person_id))
    old = db.execute("SELECT person_id FROM face_people WHERE face_id = ?", (face_id,)).fetchone()
    if old is not None and old[0] == person_id:
        unassign(db, face_id)


def rejected_pairs(db: Database) -> set[tuple[int, int]]:
    return {(f, p) for f, p in db.execute("SELECT face_id, person_id FROM face_not_person")}


def rename(db: Database, person_id: int, name: str | None) -> None:
    db.execute("UPDATE people SET name = ? WHERE id = ?", (name, person_id))


def confirm_all(db: Database, person_id: int) -> None:
    db.execute("UPDATE face_people SET confirmed = 1 WHERE person_id = ?", (person_id,))


def move_faces(db: Database, from_person: int, to_person: int) -> None:
    a = db.execute("SELECT vsum, n FROM people WHERE id = ?", (to_person,)).fetchone()
    b = db.execute("SELECT vsum, n FROM people WHERE id = ?", (from_person,)).fetchone()
    if a is not None and b is not None and b[1]:
        total = np.frombuffer(b[0], "<f8") + (np.frombuffer(a[0], "<f8") if a[0] is not None else 0)
        db.execute("UPDATE people SET vsum = ?, n = ? WHERE id = ?",
                   (np.asarray(total, "<f8").tobytes(), a[1] + b[1], to_person))
        db.execute("UPDATE people SET vsum = NULL, n = 0 WHERE id = ?", (from_person,))
    db.execute("UPDATE face_people SET person_id = ? WHERE person_id = ?", (to_person, from_person))
    db.execute("UPDATE OR IGNORE face_not_person SET person_id = ? WHERE person_id = ?", (to_person, from_person))


def delete_person(db: Database, person_id: int) -> None:
    db.execute("DELETE FROM face_people WHERE person_id = ?", (person_id,))
    db.execute("DELETE FROM face_not_person WHERE person_id = ?", (person_id,))
    db.execute("DELETE FROM people WHERE id = ?", (person_id,))


def drop_empty_people(db: Database) -> None:
    """Suggested people left with no face go; a named person stays (the photographer made it)."""
    db.execute("DELETE FROM face_not_person WHERE person_id IN (SELECT id FROM people WHERE name IS NULL"
               " AND id NOT IN (SELECT person_id FROM face_people))")
    db.execute("DELETE FROM people WHERE name IS NULL AND id NOT IN (SELECT person_id FROM face_people)")


def assignments(db: Database) -> dict[int, tuple[int, bool]]:
    """face_id -> (person_id, confirmed)."""
    return {f: (p, bool(c)) for f, p, c in db.execute("SELECT face_id, person_id, confirmed FROM face_people")}


def unassigned_vectors(db: Database, min_px: float, threshold: float, since_face: int = 0) -> list[int]:
    """Embedded faces with no person yet, newer than `since_face`, wide and sharp enough to group."""
    return [r[0] for r in db.execute(
        "SELECT f.id FROM faces f JOIN face_vectors v ON v.face_id = f.id"
        " LEFT JOIN face_people fp ON fp.face_id = f.id"
        " WHERE fp.face_id IS NULL AND f.id > ? AND (f.x2 - f.x1) >= ? AND coalesce(f.blur_score, 0) >= ?"
        " ORDER BY f.id", (since_face, min_px, threshold))]


def listing(db: Database, singles: bool = False) -> list[dict]:
    """Every named person, and every suggested one with two faces or more (`singles`: one too):
    {"person_id", "name", "faces": [{"face_id", "photo_id", "path", "box", "confirmed"}]},
    named people first, then suggested ones by size."""
    people: dict[int, dict] = {}
    for pid, name in db.execute("SELECT id, name FROM people"):
        people[pid] = {"person_id": pid, "name": name, "faces": []}
    for fid, pid, confirmed, photo_id, path, x1, y1, x2, y2, w, h, preview in db.execute(
            "SELECT fp.face_id, fp.person_id, fp.confirmed, f.photo_id, p.current_path, f.x1, f.y1, f.x2, f.y2,"
            " p.width, p.height, p.preview"
            " FROM face_people fp JOIN faces f ON f.id = fp.face_id JOIN photos p ON p.id = f.photo_id"
            " ORDER BY fp.face_id"):
        if pid in people:
            people[pid]["faces"].append({"face_id": fid, "photo_id": photo_id, "path": path,
                                         "box": [round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)],
                                         "confirmed": bool(confirmed), "photo_size": [w, h],
                                         "preview": bool(preview)})
    out = [p for p in people.values() if p["name"] or len(p["faces"]) >= (1 if singles else 2)]
    out.sort(key=lambda p: (p["name"] is None, -len(p["faces"]), p["name"] or "", p["person_id"]))
    return out


def named_people_in(db: Database, photo_id: int) -> list[dict]:
    """The named people in one photo, with their face boxes: what its XMP says of them."""
    return [{"name": r[0], "box": (r[1], r[2], r[3], r[4])} for r in db.execute(
        "SELECT pe.name, f.x1, f.y1, f.x2, f.y2 FROM faces f JOIN face_people fp ON fp.face_id = f.id"
        " JOIN people pe ON pe.id = fp.person_id WHERE f.photo_id = ? AND pe.name IS NOT NULL ORDER BY f.x1",
        (photo_id,))]


def photos_of(db: Database, person_id: int) -> list[int]:
    return [r[0] for r in db.execute(
        "SELECT DISTINCT f.photo_id FROM face_people fp JOIN faces f ON f.id = fp.face_id WHERE fp.person_id = ?",
        (person_id,))]


def forget_all(db: Database) -> int:
    """Every vector, person and assignment, gone; returns how many vectors there were."""
    n = db.execute("SELECT count(*) FROM face_vectors").fetchone()[0]
    for table in ("face_vectors", "face_people", "face_not_person", "people"):
        db.execute(f"DELETE FROM {table}")
    return n
