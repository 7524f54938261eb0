"""`make quality`: the ratings and the bursts, measured through the real pipeline.

    .venv/bin/python bench/quality.py [--only blur|bursts] [--keep DIR]

Builds (or reuses) the labelled sets of bench/qualityset.py (from
../shared/data when present, else tests/data), links each set into a fresh
inbox, runs `starsort run --once` on it as a user would (its own config,
database and library under a temporary folder), reads `starsort report
--format json`, and prints:

* blur, per part (tuning, then held-out, kept apart), per kind: sharp
  photos at 4 stars or more; fully blurred ones (defocus, motion, hand
  shake, the real shake kernel) at 2 or fewer, also per strength; every
  (sharp, blurred) pair of one source ordered correctly; (sharp, mild
  defocus, strong defocus) triples ordered; shallow depth of field (the
  face sharp, the background not) at 4 or more; what a soft face beside a
  sharp one gets; the real triplet and the photos with no face. Photos
  whose faces are all too small to judge are rated on the frame: they are
  counted apart, and also shown within the totals;
* bursts, per part: pairwise precision and recall of `cluster_id` against
  the labels (two photos are a true pair when they are frames of one
  burst), and every mistake by kind;
* high ISO, per part: the sharp and fully blurred photos again with a
  camera's noise added (qualityset.ISO_NOISE), the same blur figures.

Figures come from this run only. A script, not a test: it asserts nothing.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import qualityset  # noqa: E402

PY = sys.executable
BLURRED = ("defocus", "motion", "shake", "real-shake")
PARTS = ("tuning", "held-out")


def run_pipeline(files: list[Path], work: Path, code: Path | None = None) -> dict[str, dict]:
    """`starsort run --once` on an inbox holding `files` (hard links), then the report:
    {file name in the inbox: report row}. `code`: another revision's daemon/ to run instead."""
    inbox, library = work / "inbox", work / "library"
    inbox.mkdir(parents=True)
    names = {}
    for i, f in enumerate(files):
        name = f"{i:05d}_{f.parent.name}_{f.name}"
        try:
            os.link(f, inbox / name)
        except OSError:
            shutil.copyfile(f, inbox / name)
        names[name] = f
    config = work / "config.yaml"
    config.write_text(f"inboxes: [{inbox}]\nlibrary: {library}\ndatabase: {work / 'starsort.db'}\n"
                      "settle_seconds: 0\n")
    env = {**os.environ, "HOME": str(work), "XDG_CONFIG_HOME": str(work / "cfg"),
           "XDG_STATE_HOME": str(work / "state")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    t = time.perf_counter()
    r = subprocess.run([PY, "-m", "starsort", "run", "--once", "--config", str(config)], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"starsort run --once failed ({r.returncode}):\n{r.stderr[-3000:]}")
    seconds = time.perf_counter() - t
    out = subprocess.run([PY, "-m", "starsort", "report", "--format", "json", "--config", str(config)],
                         env=env, capture_output=True, text=True, check=True).stdout
    rows = {Path(row["original_path"]).name: row for row in json.loads(out)}
    print(f"  starsort run --once: {len(files)} photos in {seconds:.0f} s; {len(rows)} report rows", flush=True)
    return {str(names[n]): row for n, row in rows.items()}


def share(flags: list[bool]) -> str:
    if not flags:
        return "   -  (0)"
    return f"{100 * sum(flags) / len(flags):5.1f}% ({sum(flags)}/{len(flags)})"


# ---- blur --------------------------------------------------------------------------------------

def blur_report(rows: dict[str, dict], root: Path, items: list, min_px: int, frame_threshold: float) -> None:
    by_part = collections.defaultdict(list)
    for it in items:
        row = rows.get(str(root / it.file))
        if row is None:
            print(f"  missing from the report: {it.file}")
            continue
        by_part[it.part].append((it, row))

    for part in (*PARTS, "frames"):
        entries = by_part.get(part, [])
        if not entries:
            continue
        title = {"tuning": "TUNING part (the constants were chosen on these sources)",
                 "held-out": "HELD-OUT part (never used to choose anything)",
                 "frames": "photos with no face (the real triplet blur/106_*, no-face photos)"}[part]
        print(f"\n=== blur: {title} ===")
        if part == "frames":
            for it, row in entries:
                print(f"  {Path(it.file).name:34s} {it.kind:10s} {row['stars']}★ on {row['rated_on']},"
                      f" frame score {row['frame_score']}")
            continue
        # A source whose largest face is too small to judge is rated on its frame.
        small = {it.source for it, row in entries if it.face_width < min_px}
        # A source whose sharp original the frame measure (unchanged by the face work) itself
        # calls blurry may not be sharp at all: a second view, added after the first
        # held-out run showed which misses were such photos.
        soft = {it.source for it, row in entries
                if it.kind == "sharp" and (row["frame_score"] or 0.0) < frame_threshold}
        print(f"  {len({it.source for it, _ in entries})} sources ({len(small)} whose faces are all narrower than"
              f" {min_px} px, rated on the frame; {len(soft)} whose original the frame measure calls blurry:"
              f" {', '.join(sorted(soft)) or 'none'}), {len(entries)} photos")
        for label, keep in (("faces judged (largest face >= min size)", lambda s: s not in small),
                            ("faces judged, originals the frame measure calls sharp",
                             lambda s: s not in small and s not in soft),
                            ("faces too small: rated on the frame", lambda s: s in small),
                            ("all photos", lambda s: True)):
            sel = [(it, row) for it, row in entries if keep(it.source)]
            if not sel:
                continue
            print(f"\n  -- {label}: {len({it.source for it, _ in sel})} sources --")
            _blur_figures(sel)


def _blur_figures(sel: list) -> None:
    stars = lambda row: row["stars"] if row["stars"] is not None else 0  # noqa: E731
    sharp = [stars(r) >= 4 for it, r in sel if it.kind == "sharp"]
    print(f"    sharp, >= 4★                         {share(sharp)}")
    dof = [stars(r) >= 4 for it, r in sel if it.kind == "shallow-dof"]
    if dof:
        print(f"    shallow depth of field, >= 4★        {share(dof)}")
    all_blurred = [stars(r) <= 2 for it, r in sel if it.kind in BLURRED]
    print(f"    fully blurred, <= 2★                 {share(all_blurred)}")
    for kind in BLURRED:
        flags = [stars(r) <= 2 for it, r in sel if it.kind == kind]
        by_strength = collections.defaultdict(list)
        for it, r in sel:
            if it.kind == kind:
                by_strength[it.strength.split(" ")[0]].append(stars(r) <= 2)
        detail = ", ".join(f"{k} {100 * sum(v) / len(v):.0f}%" for k, v in sorted(by_strength.items()))
        print(f"      {kind:12s} <= 2★                 {share(flags)}   [{detail}]")
    # Pairs and triples within one source.
    per_source = collections.defaultdict(dict)
    for it, r in sel:
        per_source[it.source].setdefault(it.kind, []).append((it, r))
    pairs = collections.defaultdict(list)
    triples = []
    for src, kinds in per_source.items():
        if "sharp" not in kinds:
            continue
        s = stars(kinds["sharp"][0][1])
        for kind in BLURRED:
            for it, r in kinds.get(kind, []):
                pairs[kind].append(s > stars(r))
        strong = [r for it, r in kinds.get("defocus", []) if it.strength == f"w/{qualityset.DEFOCUS[-1]}"]
        for it, r in kinds.get("mild", []):
            if strong:
                triples.append(s > stars(r) > stars(strong[0]))
    every = [x for v in pairs.values() for x in v]
    print(f"    (sharp, blurred) pairs ordered       {share(every)}")
    for kind in BLURRED:
        print(f"      {kind:12s}                       {share(pairs[kind])}")
    dist = collections.Counter(stars(r) for it, r in sel if it.kind == "mild")
    if dist:
        print(f"    (sharp, mild w/{qualityset.MILD_DEFOCUS}, strong w/{qualityset.DEFOCUS[-1]}) ordered"
              f"   {share(triples)}")
        print(f"    mild defocus stars                   {dict(sorted(dist.items()))}")
    others = collections.Counter(stars(r) for it, r in sel if it.kind == "soft-others")
    if others:
        print(f"    largest face sharp, others soft      {dict(sorted(others.items()))} (stars: photos)")
    wrong = [(it, r) for it, r in sel if (it.kind in ("sharp", "shallow-dof") and stars(r) < 4)
             or (it.kind in BLURRED and stars(r) > 2)]
    if wrong:
        print(f"    off target ({len(wrong)}):")
        for it, r in wrong[:40]:
            print(f"      {it.source[-38:]:38s} {it.kind:11s} {it.strength:18s} {r['stars']}★ {r['rated_on']:5s}"
                  f" faces {r['face_scores']} skipped {r.get('skipped_faces')} frame {r['frame_score']}")


def noisy_report(rows: dict[str, dict], root: Path, items: list, min_px: int) -> None:
    """The blur figures again, per part, for the noisy copies (faces judged only)."""
    for part in PARTS:
        sel = [(it, rows[str(root / it.file)]) for it in items
               if it.part == part and it.face_width >= min_px and str(root / it.file) in rows]
        if sel:
            print(f"\n=== high ISO, {part} part, faces judged: {len({it.source for it, _ in sel})} sources ===")
            _blur_figures(sel)


# ---- bursts ------------------------------------------------------------------------------------

def burst_report(rows: dict[str, dict], root: Path, items: list) -> None:
    for part in PARTS:
        entries = [(it, rows.get(str(root / it.file))) for it in items if it.part == part]
        missing = [it.file for it, r in entries if r is None]
        entries = [(it, r) for it, r in entries if r is not None]
        if not entries:
            continue
        title = "TUNING part (max_change was chosen on these)" if part == "tuning" else \
            "HELD-OUT part (never used to choose anything)"
        print(f"\n=== bursts: {title} ===")
        kinds = collections.Counter(it.what for it, _ in entries)
        print(f"  {len(entries)} photos: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        if missing:
            print(f"  missing from the report: {missing}")
        tp = fp = fn = 0
        mistakes = collections.Counter()
        for (a, ra), (b, rb) in itertools.combinations(entries, 2):
            same = a.shot == b.shot
            together = ra["cluster_id"] is not None and ra["cluster_id"] == rb["cluster_id"]
            if same and together:
                tp += 1
            elif together:
                fp += 1
                mistakes["merged: " + "/".join(sorted((a.what, b.what)))] += 1
            elif same:
                fn += 1
                mistakes["split: " + "/".join(sorted((a.what, b.what)))] += 1
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"  pairwise precision {precision:.3f} ({tp}/{tp + fp}), recall {recall:.3f} ({tp}/{tp + fn})")
        for k, v in sorted(mistakes.items()):
            print(f"    {k}: {v} pair(s)")
        picks = collections.defaultdict(list)
        for it, r in entries:
            if it.what in ("burst-frame", "moved-within-a-second", "real-burst"):
                picks[it.shot].append(r["is_pick"])
        one = [sum(1 for p in v if p) == 1 for v in picks.values()]
        print(f"  bursts with exactly one pick: {share(one)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["blur", "bursts"])
    ap.add_argument("--keep", type=Path, help="Keep the run's folders (inbox, library, database) here.")
    ap.add_argument("--part", choices=PARTS, help="Run one part only (calibration work looks at tuning only).")
    ap.add_argument("--base", metavar="REV", help="Also run git revision REV's starsort on the same sets, for a"
                    " before/after (its figures are printed first).")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "daemon"))
    from starsort.config import Config
    min_px = Config().blur.min_face_px
    src = qualityset.data_source()
    print(f"data: {qualityset.SHARED if src == 'shared' else qualityset.TESTS} ({src});"
          f" split seed {qualityset.SEED}")
    work = Path(tempfile.mkdtemp(prefix="starsort-quality-")) if args.keep is None else args.keep
    runs: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.base:
        base = work / "base-code"
        base.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base, "daemon"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        runs.insert(0, (f"revision {args.base}", base / "daemon"))
    try:
        for label, code in runs:
            print(f"\n################ {label} ################")
            _sets(args, work / label.replace(" ", "-"), code, min_px)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _sets(args: argparse.Namespace, work: Path, code: Path | None, min_px: int) -> None:
    from starsort.config import Config
    if args.only in (None, "blur"):
        root, items = qualityset.build_blur()
        items = [it for it in items if args.part is None or it.part in (args.part, "frames")]
        print(f"\nblur set: {len(items)} photos ({root})")
        rows = run_pipeline([root / it.file for it in items], work / "blur", code)
        blur_report(rows, root, items, min_px, Config().blur.frame_threshold)
        noisy = qualityset.build_noisy(root, items)
        print(f"\nhigh ISO: the same sharp and fully blurred photos with noise of {qualityset.ISO_NOISE:g} levels:"
              f" {len(noisy)} photos")
        rows = run_pipeline([root / it.file for it in noisy], work / "noisy", code)
        noisy_report(rows, root, noisy, min_px)
    if args.only in (None, "bursts"):
        root, items = qualityset.build_bursts()
        items = [it for it in items if args.part is None or it.part == args.part]
        print(f"\nburst set: {len(items)} photos ({root})")
        rows = run_pipeline([root / it.file for it in items], work / "bursts", code)
        burst_report(rows, root, items)


if __name__ == "__main__":
    main()
