"""Database schema, as sqlite-utils migrations.

Append-only: a released migration is never edited; a change is a new
function. They run on the writer connection at start-up, before intake opens.
"""
from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("starsort")


@migrations()
def m001_initial(db: Database) -> None:
    _run_script(db, """
        -- Paths the watcher or a scan has seen but that have not settled yet.
        -- The watchdog handler only ever inserts here (through the writer).
        CREATE TABLE inbox (
            path TEXT PRIMARY KEY,
            seen_at REAL NOT NULL,
            size INTEGER,
            mtime_ns INTEGER,
            stable_since REAL
        );

        -- One row per photo: a lone file, or a RAW+JPEG pair (the raw is
        -- `original_path`, the JPEG `pair_original_path`).
        CREATE TABLE photos (
            id INTEGER PRIMARY KEY,
            original_path TEXT NOT NULL,       -- not unique: a later card may reuse a name
            current_path TEXT,
            pair_original_path TEXT,
            pair_path TEXT,
            kind TEXT NOT NULL,                 -- jpeg | raw | other
            state TEXT NOT NULL,                -- queued | analysed | filing | done | quarantined | failed
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            size INTEGER,
            mtime_ns INTEGER,
            sha256 TEXT,
            stars INTEGER,
            rated_on TEXT,                      -- faces | frame
            faces INTEGER,
            blurry_faces INTEGER,
            face_scores TEXT,                   -- JSON list of per-face scores
            frame_score REAL,
            sharpness REAL,
            phash TEXT,                         -- 16 hex digits
            b0 INTEGER, b1 INTEGER, b2 INTEGER, b3 INTEGER,   -- 16-bit bands of the pHash
            captured_ts REAL,                   -- captured_at as epoch seconds, for the window
            cluster_id INTEGER,
            is_pick INTEGER NOT NULL DEFAULT 0,
            captured_at TEXT,
            camera_model TEXT,
            decode_source TEXT,
            width INTEGER,
            height INTEGER,
            queued_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX photos_state ON photos(state);
        CREATE INDEX photos_original ON photos(original_path);
        CREATE INDEX photos_pair_original ON photos(pair_original_path);
        -- Multi-index hashing: any hash within distance d<=3 of a query shares
        -- at least one exact 16-bit band with it; see library/bursts.py for larger d.
        CREATE INDEX photos_b0 ON photos(b0, captured_ts);
        CREATE INDEX photos_b1 ON photos(b1, captured_ts);
        CREATE INDEX photos_b2 ON photos(b2, captured_ts);
        CREATE INDEX photos_b3 ON photos(b3, captured_ts);
        CREATE INDEX photos_captured ON photos(captured_ts);
        CREATE INDEX photos_cluster ON photos(cluster_id);

        CREATE TABLE clusters (
            id INTEGER PRIMARY KEY,
            pick_photo_id INTEGER,
            size INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        );

        CREATE TABLE faces (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES photos(id),
            x1 REAL, y1 REAL, x2 REAL, y2 REAL,
            landmarks TEXT,                     -- JSON [[x, y] * 5], original-image pixels
            probability REAL,
            blur_score REAL,
            blurry INTEGER
        );
        CREATE INDEX faces_photo ON faces(photo_id);

        -- The move journal: a row is written before each filesystem step and
        -- updated after it, so start-up recovery can look at the disk and
        -- finish (never undo) a move a crash interrupted.
        CREATE TABLE moves (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES photos(id),
            role TEXT NOT NULL,                 -- primary | pair | sidecar | xmp
            src TEXT NOT NULL,
            dst TEXT NOT NULL,
            copy INTEGER NOT NULL,              -- 1: keep the source (mode: copy)
            sha256 TEXT,
            state TEXT NOT NULL,                -- planned | placed | done
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX moves_state ON moves(state);
        CREATE UNIQUE INDEX moves_dst ON moves(dst);

        -- Every source file a photo consumed, so that in copy mode (where the
        -- originals stay in the inbox) a rescan does not queue them again.
        CREATE TABLE seen (
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            photo_id INTEGER NOT NULL,
            PRIMARY KEY (path, size, mtime_ns)
        );

        -- Events worth showing in `status` (last error, root warning, ...).
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL
        );

        -- One row: the running service (pid, start time) for `status`.
        CREATE TABLE service (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pid INTEGER,
            started_at REAL,
            heartbeat_at REAL,
            stopped_at REAL,
            running_as_root INTEGER NOT NULL DEFAULT 0,
            config_path TEXT
        );
        """)


@migrations()
def m002_exif_labels_artifacts(db: Database) -> None:
    _run_script(db, """
        -- EXIF validation, read at analysis time (exif.py): JSON lists of the
        -- required tags that are missing and of the problems found, and the
        -- checked values as read (JSON object).
        ALTER TABLE photos ADD COLUMN exif_missing TEXT;
        ALTER TABLE photos ADD COLUMN exif_problems TEXT;
        ALTER TABLE photos ADD COLUMN exif TEXT;
        -- The xmp:Label last written for this photo (the burst pick's), so
        -- the label can be taken back when a sharper frame becomes the pick.
        ALTER TABLE photos ADD COLUMN xmp_label TEXT;

        -- Files starsort created or changed besides the moves: sidecars it
        -- wrote or merged into, JPEGs whose own XMP it rewrote, JPEGs it
        -- converted from raws. `undo` uses it to take them back: `original`
        -- holds a merged-into sidecar's bytes from before the first merge.
        CREATE TABLE artifacts (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES photos(id),
            path TEXT NOT NULL,
            kind TEXT NOT NULL,                 -- sidecar | jpeg-xmp | converted
            created INTEGER NOT NULL,           -- 1: the file did not exist before starsort wrote it
            original BLOB,
            sha256 TEXT,                        -- of the bytes starsort last wrote
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE UNIQUE INDEX artifacts_path ON artifacts(path);
        CREATE INDEX artifacts_photo ON artifacts(photo_id);
        CREATE INDEX photos_phash ON photos(phash);
        """)


@migrations()
def m003_content_hashes(db: Database) -> None:
    _run_script(db, """
        -- photos.sha256 is the primary file's SHA-256, pair_sha256 its JPEG's:
        -- filled when a filing copies the bytes, and otherwise only when a new
        -- file has the same size as a filed one (library/copies.py), so most
        -- photos are never hashed by the service.
        ALTER TABLE photos ADD COLUMN pair_sha256 TEXT;
        -- A photo skipped as a byte-identical copy (state 'duplicate'): the
        -- library photo it is a copy of.
        ALTER TABLE photos ADD COLUMN duplicate_of INTEGER REFERENCES photos(id);
        CREATE INDEX photos_size_sha ON photos(size, sha256);
        """)


@migrations()
def m004_face_measures_bursts(db: Database) -> None:
    _run_script(db, """
        -- A face's score is min(iso_score, dir_score) (analysis/blur.py): the
        -- Laplacian's part and the weakest direction's part, kept so a change
        -- of the rule can be checked on stored photos. judged_px is the face's
        -- width in the pixels it was measured on; skipped says why a face did
        -- not count for the stars (small | background; NULL: it counted).
        ALTER TABLE faces ADD COLUMN iso_score REAL;
        ALTER TABLE faces ADD COLUMN dir_score REAL;
        ALTER TABLE faces ADD COLUMN judged_px REAL;
        ALTER TABLE faces ADD COLUMN skipped TEXT;
        -- JSON list of judged_px, in the order of face_scores: with them, the
        -- stars are a function of this row alone (analysis/rate.py stars_for).
        ALTER TABLE photos ADD COLUMN face_px TEXT;
        -- Faces recorded but not counted (too small to judge, or in the background).
        ALTER TABLE photos ADD COLUMN skipped_faces INTEGER;
        -- 1 when captured_ts carries EXIF SubSecTimeOriginal: frames a fraction
        -- of a second apart from one camera are a burst whatever they show.
        ALTER TABLE photos ADD COLUMN captured_subsec INTEGER NOT NULL DEFAULT 0;
        -- A small grey thumbnail of each photo (analysis/signature.py, about
        -- 6 KB) that confirms a burst match the pHash bands proposed. A table
        -- of its own, so rows of photos stay small for every scan of them.
        CREATE TABLE signatures (
            photo_id INTEGER PRIMARY KEY REFERENCES photos(id),
            data BLOB NOT NULL
        );
        """)


@migrations()
def m005_review(db: Database) -> None:
    _run_script(db, """
        -- The photographer's word over the machine's (the review page, a move
        -- between star folders). `stars` is the rating in force, the one the
        -- star folder and the XMP say; `machine_stars` what the analysis gave,
        -- kept so `U` can return to it and a re-rate can recompute it.
        ALTER TABLE photos ADD COLUMN machine_stars INTEGER;
        UPDATE photos SET machine_stars = stars;
        -- machine | photographer: once the photographer decided, nothing
        -- automatic changes the photo's stars, rejection or folder again.
        ALTER TABLE photos ADD COLUMN decided_by TEXT NOT NULL DEFAULT 'machine';
        -- 1: filed in <library>/rejected, xmp:Rating -1.
        ALTER TABLE photos ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;
        -- The name under review.previews of the previews a worker made (NULL: none yet).
        ALTER TABLE photos ADD COLUMN preview TEXT;
        -- Who chose the burst's pick: a photographer's pick stays when a sharper frame lands.
        ALTER TABLE clusters ADD COLUMN pick_by TEXT NOT NULL DEFAULT 'machine';
        -- Where the running service's review page listens (`starsort review --url`).
        ALTER TABLE service ADD COLUMN review_port INTEGER;
        -- Every change to a photo's row takes the next number of one counter,
        -- so the page asks "what changed after N" and never misses a change
        -- or sees one twice, whatever the clock does.
        ALTER TABLE photos ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
        INSERT INTO change_counter (id, n) VALUES (1, 0);
        CREATE INDEX photos_seq ON photos(seq);
        CREATE TRIGGER photos_seq_on_insert AFTER INSERT ON photos BEGIN
            UPDATE change_counter SET n = n + 1 WHERE id = 1;
            UPDATE photos SET seq = (SELECT n FROM change_counter WHERE id = 1) WHERE id = new.id;
        END;
        CREATE TRIGGER photos_seq_on_update AFTER UPDATE ON photos WHEN new.seq = old.seq BEGIN
            UPDATE change_counter SET n = n + 1 WHERE id = 1;
            UPDATE photos SET seq = (SELECT n FROM change_counter WHERE id = 1) WHERE id = new.id;
        END;
        -- Photos filed per second, for the status line; a file moved by hand
        -- between star folders is found by its library path.
        CREATE INDEX photos_updated ON photos(updated_at);
        CREATE INDEX photos_current ON photos(current_path);
        CREATE INDEX photos_pair_current ON photos(pair_path);

        -- Every decision the photographer made, with what it replaced, so the
        -- page's undo (Ctrl+Z) can put the last one back. JSON objects of
        -- {stars, rejected, decided_by, pick_id, folder}.
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES photos(id),
            action TEXT NOT NULL,               -- stars | reject | pick | machine | moved
            before TEXT NOT NULL,
            after TEXT NOT NULL,
            created_at REAL NOT NULL,
            undone_at REAL
        );
        CREATE INDEX decisions_photo ON decisions(photo_id);

        -- Settings changed from the review page (the blur threshold after a
        -- what-if), in force over config.yaml for as long as config.yaml still
        -- says what it said then (`config_value`): an edit of the file wins.
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,                -- JSON
            config_value TEXT,                  -- JSON: config.yaml's value when this was set
            set_at REAL NOT NULL
        );
        """)



@migrations()
def m006_filed_size_index(db: Database) -> None:
    _run_script(db, """
        -- The re-import check (library/copies.py) asks for filed photos of a
        -- byte count. Through photos_size_sha it walked every queued photo of
        -- that size first (their sha256 is NULL, which sorts first): a card of
        -- uncompressed raws, all one size, made each photo's check cost the
        -- whole queue. Only filed photos are in this index.
        CREATE INDEX photos_filed_size_sha ON photos(size, sha256) WHERE state = 'done';
        """)

@migrations()
def m007_state_updated_index(db: Database) -> None:
    _run_script(db, """
        -- The service asks every few seconds how it is doing (store/health.py):
        -- photos filed today, in the last minute, and the newest quarantines
        -- since the newest good filing. By state and time, each is a range of
        -- this index, whatever the library's size or the queue's.
        CREATE INDEX photos_state_updated ON photos(state, updated_at);
        """)


@migrations()
def m008_people(db: Database) -> None:
    _run_script(db, """
        -- Who each face is (analysis/embed.py): a unit float32 vector per face,
        -- with the name of the model that made it. Another model re-embeds
        -- the faces (their boxes and landmarks stay); nothing else changes.
        CREATE TABLE face_vectors (
            face_id INTEGER PRIMARY KEY REFERENCES faces(id),
            model TEXT NOT NULL,
            vector BLOB NOT NULL                -- little-endian float32
        );
        -- People: named by the photographer, or suggested by grouping (name NULL).
        -- vsum, n: the sum of the person's face vectors (float64) and how many,
        -- kept as faces come and go, so grouping compares a new face with a
        -- person (average linkage) without reading the person's faces.
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT UNIQUE,
            created_at REAL NOT NULL,
            vsum BLOB,
            n INTEGER NOT NULL DEFAULT 0
        );
        -- Which person a face is. confirmed = 1: the photographer said so (named,
        -- merged, split, or placed it); nothing automatic ever moves such a face.
        CREATE TABLE face_people (
            face_id INTEGER PRIMARY KEY REFERENCES faces(id),
            person_id INTEGER NOT NULL REFERENCES people(id),
            confirmed INTEGER NOT NULL DEFAULT 0,
            at REAL NOT NULL
        );
        CREATE INDEX face_people_person ON face_people(person_id);
        -- "Not this person": grouping never puts the face there again.
        CREATE TABLE face_not_person (
            face_id INTEGER NOT NULL,
            person_id INTEGER NOT NULL,
            PRIMARY KEY (face_id, person_id)
        );
        """)


# Marks a person as changed, for the triggers of m009 (`who` is NEW.id, OLD.person_id, ...).
_PERSON_CHANGED = """
            INSERT INTO people_changes VALUES
                ({who}, (SELECT coalesce(max(seq), 0) + 1 FROM people_changes))
                ON CONFLICT(person_id) DO UPDATE SET seq = excluded.seq;"""


@migrations()
def m009_people_changes(db: Database) -> None:
    # Which people changed, in order: grouping keeps the people in memory
    # (store.people.PeopleCache) and reads back only those changed since, so its
    # cost follows the new faces, not the library. Triggers, so no writer of
    # people or face_people can forget to say so; upserts, as an outer statement's
    # conflict clause would override OR REPLACE. A face moved between people
    # changes both.
    triggers = [("people", "INSERT", ["NEW.id"]), ("people", "UPDATE", ["NEW.id"]),
                ("people", "DELETE", ["OLD.id"]), ("face_people", "INSERT", ["NEW.person_id"]),
                ("face_people", "UPDATE", ["OLD.person_id", "NEW.person_id"]),
                ("face_people", "DELETE", ["OLD.person_id"])]
    _run_script(db, """
        CREATE TABLE people_changes (
            person_id INTEGER PRIMARY KEY,
            seq INTEGER NOT NULL
        );
        CREATE INDEX people_changes_seq ON people_changes(seq);
        """ + "".join(
        f"""
        CREATE TRIGGER {table}_changed_{event.lower()} AFTER {event} ON {table} BEGIN"""
        + "".join(_PERSON_CHANGED.format(who=who) for who in whos) + """
        END;"""
        for table, event, whos in triggers))


@migrations()
def m010_moves_photo_index(db: Database) -> None:
    # Filing reads a photo's journal rows several times (complete, committed, finish,
    # collapse, undo); without this each read walked every move the library ever made.
    db.execute("CREATE INDEX IF NOT EXISTS moves_photo ON moves(photo_id)")


def _run_script(db: Database, script: str) -> None:
    # Not executescript(): it COMMITs first, which would split the migration
    # from its record in _sqlite_migrations and break the all-or-nothing apply.
    import re
    import sqlite3
    script = re.sub(r"--[^\n]*", "", script)
    # A trigger's body holds semicolons of its own: a statement ends where
    # SQLite says it is complete, not at every semicolon.
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                db.execute(statement)
            statement = ""
