"""Does a change keep starsort's decisions? `starsort report` of two revisions on the same photos.

Checks out REV (default: the parent of the first commit of the current
branch that touched daemon/, or --base) into a temporary folder, then runs
`starsort run --once` from that checkout and from this working tree on two
identical copies of one inbox, and compares `starsort report -f json` row by
row. Paths are compared relative to each run's own folder; nothing else is
normalised, so stars, faces, scores, bursts, picks, EXIF checks and
duplicates must all agree; columns the base does not have yet (the contract
only adds them at the end) are listed and left out.

    .venv/bin/python bench/compare_report.py --base 3a20ac3           # tests/data
    .venv/bin/python bench/compare_report.py --base 3a20ac3 --input ../shared/data --repeat 5

Exits 0 when the reports agree, 1 with the differing rows otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO_EXTS = {".jpg", ".jpeg", ".arw", ".nef", ".cr2", ".dng", ".kdc", ".xmp", ".orf", ".rw2"}


def checkout(rev: str, into: Path) -> Path:
    """The daemon/ source of `rev`, unpacked with `git archive` (the working tree is not touched)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "daemon"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "daemon"


def run(source: Path, inbox_from: Path, work: Path, timing: list | None = None) -> list[dict]:
    """starsort run --once with the package from `source`, on a copy of `inbox_from`.

    Appends (wall seconds, CPU seconds of the service and its workers) to `timing`."""
    inbox, library = work / "inbox", work / "library"
    inbox.mkdir(parents=True)
    for p in sorted(inbox_from.rglob("*")):
        if p.is_file() and p.suffix.lower() in PHOTO_EXTS:
            dst = inbox / p.relative_to(inbox_from)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dst)  # the same mtimes: a photo without EXIF time is dated by it
    config = work / "config.yaml"
    config.write_text(f"inboxes: [{inbox}]\nlibrary: {library}\ndatabase: {work / 'starsort.db'}\n"
                      "settle_seconds: 0\nworkers: 1\n")
    env = {**os.environ, "PYTHONPATH": str(source), "HOME": str(work), "XDG_CONFIG_HOME": str(work / "cfg"),
           "XDG_STATE_HOME": str(work / "state")}
    cmd = [sys.executable, "-m", "starsort"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([*cmd, "run", "--once", "--config", str(config)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if timing is not None:
        timing.append((wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
    out = subprocess.run([*cmd, "report", "-f", "json", "--config", str(config)], env=env, check=True,
                         capture_output=True, text=True).stdout
    rows = json.loads(out)
    for r in rows:
        for key in ("original_path", "current_path", "pair_path", "duplicate_of"):
            if r.get(key):
                r[key] = r[key].replace(str(work), "<run>")
    return sorted(rows, key=lambda r: r["original_path"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD", help="The revision to compare with (default: HEAD).")
    ap.add_argument("--input", type=Path, default=ROOT / "tests" / "data", help="The inbox to copy.")
    ap.add_argument("--repeat", type=int, default=1,
                    help="Runs of each, alternating, for the timing (medians and their ratio).")
    args = ap.parse_args()
    times: dict[str, list] = {"base": [], "tree": []}
    with tempfile.TemporaryDirectory(prefix="starsort-compare-") as tmp:
        tmp = Path(tmp)
        base_src = checkout(args.base, tmp / "base-src")
        for i in range(args.repeat):
            before = run(base_src, args.input, tmp / f"before{i}", times["base"])
            after = run(ROOT / "daemon", args.input, tmp / f"after{i}", times["tree"])
    print(f"{len(before)} rows from {args.base}, {len(after)} rows from the working tree ({args.input})")
    # The contract only ever adds columns at the end: compare the ones both have.
    added = sorted({k for r in after for k in r} - {k for r in before for k in r})
    if added:
        print(f"columns only the working tree has (not compared): {', '.join(added)}")
        after = [{k: v for k, v in r.items() if k not in added} for r in after]
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    print(f"run --once, median of {args.repeat}: {args.base} {med['base'][0]:.2f} s wall, {med['base'][1]:.2f} s CPU;"
          f" working tree {med['tree'][0]:.2f} s wall, {med['tree'][1]:.2f} s CPU;"
          f" ratio (tree / base) wall {med['tree'][0] / med['base'][0]:.3f}, CPU {med['tree'][1] / med['base'][1]:.3f}")
    if before == after:
        print("the reports agree, row for row (paths taken relative to each run)")
        return 0
    for b, a in zip(before, after):
        if b != a:
            diff = {k: (b.get(k), a.get(k)) for k in set(b) | set(a) if b.get(k) != a.get(k)}
            print(f"{b['original_path']}: {diff}")
    if len(before) != len(after):
        print(f"row counts differ: {len(before)} vs {len(after)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
