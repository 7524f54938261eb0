"""Where a worker's time goes: profile the analysis of the benchmark's 24 MP photos in one process.

    .venv/bin/python bench/profile_analysis.py [--rounds 3] [--group jpeg|faces|arw]

Uses pyinstrument when it is installed (`.venv/bin/pip install pyinstrument`;
not a dependency of starsort), else cProfile. Analyses each photo once to
warm up, then `--rounds` times under the profiler, and prints the call tree
(pyinstrument) or the 25 costliest functions (cProfile), then median
milliseconds per stage.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "daemon"))

import benchdata  # noqa: E402
from starsort.analysis import faces  # noqa: E402
from starsort.config import Config  # noqa: E402
from starsort.analysis.job import Job  # noqa: E402
from starsort.pipeline import ANALYSIS, Context, analyse  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--group", choices=["jpeg", "faces", "arw"], action="append")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) - 1),
                    help="torch intra-op threads (default: as one worker sets them, a core left for decoding)")
    args = ap.parse_args()
    sets = benchdata.build()
    files = [(p, "raw" if g == "arw" else "jpeg") for g in (args.group or ["jpeg", "faces", "arw"]) for p in sets[g]]
    cfg = Config()
    ctx = Context(cfg)
    ctx.models["mtcnn"] = faces.load_detector(cfg.faces, threads=args.threads)
    faces.warm_up(ctx.models["mtcnn"], cfg.analysis.max_px)
    for p, k in files:
        analyse(Job(1, str(p), k), ctx)

    stage_ms: dict[str, list[float]] = {}

    def work() -> None:
        for _ in range(args.rounds):
            for p, k in files:
                job = Job(1, str(p), k)
                for st in ANALYSIS:
                    t = time.perf_counter()
                    st.run(job, ctx)
                    stage_ms.setdefault(st.__name__.split(".")[-1], []).append((time.perf_counter() - t) * 1000)

    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    if Profiler is not None:
        prof = Profiler(interval=0.001)
        prof.start()
        work()
        prof.stop()
        print(prof.output_text(unicode=False, color=False))
    else:
        import cProfile
        import pstats
        pr = cProfile.Profile()
        pr.runcall(work)
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
    print(f"{len(files)} photos x {args.rounds} rounds; median ms per photo by stage:")
    for name, xs in stage_ms.items():
        print(f"  {name:8s} {statistics.median(xs):7.1f}  (p90 {sorted(xs)[int(len(xs) * 0.9)]:.1f})")


if __name__ == "__main__":
    main()
