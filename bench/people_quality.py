"""`make quality` (people): finding a person and grouping faces, through the real pipeline.

    .venv/bin/python bench/people_quality.py [--keep DIR]

The identity-labelled set: the face photos of ../shared/data/faces (else
tests/data), each labelled with the people it shows (below); dlib's face
chips of five "Johns" (all 54 of them: 150 px, low quality, the hard part,
and ten or more photos a person, as an event's photos of one guest are); the
PASCAL crowd photos of dlib/faces and the group photos, whose strangers must
match nobody. Split by the blur set's own
deal (bench/qualityset.py: people who appear together are one group; groups
dealt by SHA-256 of "12:group"), so no person is in both parts and a photo is
on the same side in every figure of make quality.

Per part, in a fresh library: `starsort run --once` on every photo (the
faces are embedded and grouped as the service does), then for every
single-face photo of a person with another photo in the part,
`starsort people find REF --json` (and again with --expand 0, the reference
alone), and `starsort people list --json`.

* find, over photos, the reference photo itself left out: precision (of the
  photos found, how many show the person) and recall (of the person's other
  photos, how many were found), at people.threshold, and at a sweep of
  thresholds (the defaults were chosen on the tuning part);
* grouping, over pairs of faces whose person is known (the faces of
  single-face labelled photos, and every stranger of a crowd photo, each a
  person of their own): pairwise precision and recall of the suggested
  people; and how many people hold two faces of one photo (must be 0).

A script, not a test: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import qualityset  # noqa: E402

PY = sys.executable
FACES = qualityset.SHARED / "faces"
SWEEP = (0.35, 0.40, 0.45, 0.50, 0.55, 0.60)

# Who is in each photo (paths under faces/). Photos not named here and not under
# dlib/johns/<name>/ show only strangers (crowds, groups): they must match nobody.
PEOPLE = {
    "face_recognition/train/obama/obama.jpg": {"obama"}, "face_recognition/train/obama/obama2.jpg": {"obama"},
    "face_recognition/test/obama1.jpg": {"obama"}, "face_recognition/extra/obama3.jpg": {"obama"},
    "face_recognition/extra/obama_partial_face.jpg": {"obama"},
    "face_recognition/extra/obama_partial_face2.jpg": {"obama"},
    "face_recognition/extra/obama-240p.jpg": {"obama"}, "face_recognition/extra/obama_small.jpg": {"obama"},
    "face_recognition/test/obama_and_biden.jpg": {"obama", "biden"},
    "face_recognition/train/biden/biden.jpg": {"biden"}, "face_recognition/train/biden/biden2.jpg": {"biden"},
    "face_recognition/train/kit_harington/john1.jpeg": {"kit_harington"},
    "face_recognition/train/kit_harington/john2.jpeg": {"kit_harington"},
    "face_recognition/test/johnsnow_test1.jpg": {"kit_harington"},
    "face_recognition/train/rose_leslie/img1.jpg": {"rose_leslie"},
    "face_recognition/train/rose_leslie/img2.jpg": {"rose_leslie"},
    "face_recognition/test/kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
    "face_recognition/train/alex_lacamoire/img1.jpg": {"alex_lacamoire"},
    "face_recognition/test/alex_lacamoire1.jpg": {"alex_lacamoire", "?"},
    "face_recognition/extra/alex-lacamoire.png": {"alex_lacamoire"},
    "face_recognition/extra/lin-manuel-miranda.png": {"lin_manuel_miranda"},
    "openface/clapton-1.jpg": {"clapton"}, "openface/clapton-2.jpg": {"clapton"},
    "openface/lennon-1.jpg": {"lennon"}, "openface/lennon-2.jpg": {"lennon"},
    "openface/adams.jpg": {"adams"}, "openface/carell.jpg": {"carell"},
    "openface/longoria-cooper.jpg": {"longoria", "cooper"},
    "facenet_pytorch/angelina_jolie_1.jpg": {"angelina_jolie"},
    "facenet_pytorch/kate_siegel_1.jpg": {"kate_siegel"},
    "facenet_pytorch/paul_rudd_1.jpg": {"paul_rudd"}, "facenet_pytorch/shea_whigham_1.jpg": {"shea_whigham"},
    "mtcnn/ivan.jpg": {"ivan"},
}
# Left out: who else is in it is not known, so a match could not be judged.
UNKNOWN = {"face_recognition/extra/two_people.jpg", "mtcnn/no-faces.jpg", "dlib/faces/dogs.jpg"}


def labelled() -> list[tuple[Path, set[str], str]]:
    """(photo, the people in it, its split group), every one of dlib's face chips included."""
    sources = {Path(s.path): s for s in qualityset.face_sources("shared", johns_per_identity=None)}
    out = []
    for p, s in sorted(sources.items()):
        rel = str(p.relative_to(FACES))
        if rel in UNKNOWN:
            continue
        who = PEOPLE.get(rel, {p.parent.name} if "johns" in p.parts else set())
        out.append((p, who, s.group))
    return out


def _jpeg(src: Path, dst: Path) -> None:
    from PIL import Image
    with Image.open(src) as im:
        im.convert("RGB").save(dst, quality=95)


def run_part(items: list[tuple[Path, set[str], str]], work: Path) -> dict:
    inbox, library, db = work / "inbox", work / "library", work / "state" / "starsort.db"
    inbox.mkdir(parents=True)
    names: dict[str, tuple[Path, set[str]]] = {}
    for i, (p, who, _) in enumerate(items):
        name = f"{i:04d}_{p.stem}.jpg"
        if p.suffix.lower() == ".png":
            _jpeg(p, inbox / name)
        else:
            os.link(p, inbox / name) if p.stat().st_dev == inbox.stat().st_dev else _copy(p, inbox / name)
        names[name] = (p, who)
    cfg = work / "config.yaml"
    cfg.write_text(f"inboxes: [{inbox}]\nlibrary: {library}\ndatabase: {db}\nsettle_seconds: 0\n"
                   "review:\n  enabled: false\nxmp:\n  enabled: false\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "daemon")}
    t0 = time.monotonic()
    subprocess.run([PY, "-m", "starsort", "run", "--once", "--config", str(cfg)], env=env, check=True,
                   capture_output=True)
    t_run = time.monotonic() - t0
    report = json.loads(subprocess.run([PY, "-m", "starsort", "report", "--format", "json", "--config", str(cfg)],
                                       env=env, check=True, capture_output=True, text=True).stdout)
    by_path = {r["current_path"]: Path(r["original_path"]).name for r in report}
    groups = json.loads(subprocess.run([PY, "-m", "starsort", "people", "list", "--json", "--config", str(cfg)],
                                       env=env, check=True, capture_output=True, text=True).stdout)
    faces_per_photo = {Path(r["original_path"]).name: int(r["faces"] or 0) for r in report}
    finds: dict[str, dict] = {"expanded": {}, "alone": {}}
    t0 = time.monotonic()
    for name, (p, who) in names.items():
        real = who - {"?"}
        if len(real) != 1 or faces_per_photo.get(name) != 1:
            continue
        person = next(iter(real))
        if sum(1 for n2, (_, w2) in names.items() if n2 != name and person in w2) == 0:
            continue
        ref = p if p.suffix.lower() != ".png" else _png_ref(p, work)
        for mode, extra in (("expanded", []), ("alone", ["--expand", "0"])):
            r = subprocess.run([PY, "-m", "starsort", "people", "find", str(ref), "--json",
                                "--threshold", "0.9", *extra, "--config", str(cfg)],
                               env=env, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"  find {p.name}: {r.stderr.strip()[-200:]}")
                continue
            finds[mode][name] = (person, [(by_path.get(x["path"], Path(x["original_path"]).name), x["distance"])
                                          for x in json.loads(r.stdout)])
    t_find = (time.monotonic() - t0) / max(1, sum(map(len, finds.values())))
    return {"names": names, "finds": finds, "groups": groups, "by_path": by_path,
            "faces": faces_per_photo, "seconds_run": t_run, "seconds_per_find": t_find}


def _copy(a: Path, b: Path) -> None:
    import shutil
    shutil.copyfile(a, b)


def _png_ref(p: Path, work: Path) -> Path:
    out = work / "refs" / (p.stem + ".jpg")
    out.parent.mkdir(exist_ok=True)
    if not out.exists():
        _jpeg(p, out)
    return out


def find_scores(res: dict, threshold: float, keep=lambda path: True, mode: str = "expanded"
                ) -> tuple[int, int, int, int]:
    """(true positives, found, truths, queries) over every find, the reference left out;
    `keep(path)` limits the queries and the photos counted to a subset. `mode`: "expanded"
    (people find as it runs: the sure matches search too) or "alone" (--expand 0). Every find
    ran at threshold 0.9 and is cut here, the same as running at `threshold` (>= expand)."""
    tp = found = truth = queries = 0
    kept = {n for n, (p, _) in res["names"].items() if keep(p)}
    for name, (person, hits) in res["finds"][mode].items():
        if name not in kept:
            continue
        queries += 1
        got = {n for n, d in hits if d < threshold and n != name and n in kept}
        should = {n for n, (_, who) in res["names"].items() if n != name and person in who and n in kept}
        tp += len(got & should)
        found += len(got)
        truth += len(should)
    return tp, found, truth, queries


def group_scores(res: dict) -> dict:
    """Pairwise precision/recall of the suggested people over faces of known person."""
    person_of_face: dict[int, int] = {}
    photo_of_face: dict[int, str] = {}
    for g in res["groups"]:
        for f in g["faces"]:
            person_of_face[f["face_id"]] = g["person_id"]
            photo_of_face[f["face_id"]] = res["by_path"].get(f["path"], Path(f["path"]).name)
    same_photo = sum(1 for g in res["groups"]
                     if len({res["by_path"].get(f["path"], f["path"]) for f in g["faces"]}) < len(g["faces"]))
    # The truth, per face: single-face labelled photos -> that person; crowd photos -> a stranger each.
    known: dict[int, str] = {}
    for fid, photo in photo_of_face.items():
        who = res["names"].get(photo, (None, set()))[1]
        real = who - {"?"}
        if len(real) == 1 and res["faces"].get(photo) == 1:
            known[fid] = next(iter(real))
        elif not who:
            known[fid] = f"stranger-{fid}"
    # Faces never grouped count too: a person's face left alone is a missed pair.
    tp = fp = fn = 0
    faces = sorted(known)
    for a, b in itertools.combinations(faces, 2):
        same_true = known[a] == known[b]
        same_pred = a in person_of_face and person_of_face.get(a) == person_of_face.get(b)
        tp += same_true and same_pred
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    return {"tp": tp, "fp": fp, "fn": fn, "same_photo": same_photo, "people": len(res["groups"]),
            "faces_grouped": len(person_of_face)}


def pct(a: int, b: int) -> str:
    return f"{a / b:.3f} ({a}/{b})" if b else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="Keep the libraries in this folder.")
    args = ap.parse_args()
    if not FACES.is_dir():
        print("../shared/data/faces is not here: the people set needs it (tests/data holds too few people)")
        return
    sys.path.insert(0, str(ROOT / "daemon"))
    from starsort.config import Config
    cfg = Config().people
    default, expand = cfg.threshold, cfg.expand_threshold
    # The blur set's own deal (over every face photo's group, at most JOHNS_PER_IDENTITY
    # chips each), so a photo is on the same side in every figure make quality prints; every
    # chip then goes to the side its identity was dealt to.
    items = labelled()
    part = qualityset.split([s.group for s in qualityset.face_sources("shared")])
    root = Path(tempfile.mkdtemp(prefix="starsort-people-", dir=args.keep))
    for side in ("tuning", "held-out"):
        mine = [x for x in items if part[x[2]] == side]
        people = {w for _, who, _ in mine for w in who if w != "?"}
        print(f"\n== {side}: {len(mine)} photos, {len(people)} people ==")
        res = run_part(mine, root / side)
        print(f"  run --once {res['seconds_run']:.0f} s; people find {res['seconds_per_find']:.1f} s a query"
              f" (most of it loading MTCNN in the CLI)")
        for mode, label in (("expanded", f"people find (expand_threshold {expand:g})"),
                            ("alone", "the reference alone (--expand 0)")):
            tp, found, truth, q = find_scores(res, default, mode=mode)
            print(f"  {label} at people.threshold {default:g}, {q} queries: precision {pct(tp, found)},"
                  f" recall {pct(tp, truth)}")
            for t in SWEEP:
                tp, found, truth, _ = find_scores(res, t, mode=mode)
                print(f"    threshold {t:.2f}: precision {pct(tp, found)}, recall {pct(tp, truth)}")
        g = group_scores(res)
        print(f"  grouping: {g['people']} suggested people, {g['faces_grouped']} faces placed;"
              f" pairwise precision {pct(g['tp'], g['tp'] + g['fp'])}, recall {pct(g['tp'], g['tp'] + g['fn'])};"
              f" people with two faces of one photo: {g['same_photo']}")
        # Apart, for comparison: dlib's face chips (150 px crops of unknown origin) alone and
        # without them; the photos before every chip was used (at most JOHNS_PER_IDENTITY per
        # identity, as in earlier runs); and without the two photos of a face half out of the frame.
        capped = {Path(s.path) for s in qualityset.face_sources("shared")}
        for label, keep in (("dlib's face chips only", lambda p: "johns" in p.parts),
                            ("without dlib's face chips", lambda p: "johns" not in p.parts),
                            (f"at most {qualityset.JOHNS_PER_IDENTITY} chips an identity", lambda p: p in capped),
                            ("without the half faces", lambda p: "partial_face" not in p.name)):
            tp, found, truth, q = find_scores(res, default, keep)
            print(f"  find {label}, {q} queries: precision {pct(tp, found)}, recall {pct(tp, truth)}")
    print(f"\nlibraries in {root}" if args.keep else "")


if __name__ == "__main__":
    main()
