"""`starsort sort --scheduler`: the analysis on a real Dask cluster (a LocalCluster: real
scheduler, nannies and worker processes on this machine), the filing here.

Skipped where Dask is not installed (it is optional: `pip install 'starsort[cluster]'`);
the test extra installs it, so CI runs these.
"""
from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..daemon import ROOT, Starsort
from ..helpers import DATA, sha256

pytest.importorskip("distributed", reason="Dask is optional: pip install 'starsort[cluster]'")

pytestmark = pytest.mark.e2e

MIXED = ["ivan.jpg", "clapton-2.jpg", "kit_with_rose.jpg", "no-faces.jpg", "multiface.jpg",
         "SonySLT-A55__DSC3755.JPG", "SonySLT-A55__DSC3756.JPG", "106_NIKON-D3400-35MM_S.JPG",
         "two_people.ARW", "edge_jpeg_named_as_D70s.nef"]


class Cluster:
    """`dask scheduler` and `dask worker` (its nanny and worker processes) on 127.0.0.1, as a
    studio starts them, each its own process: nothing of Dask runs inside the test process."""

    def __init__(self, folder: Path, workers: int = 2, threads: int = 1):
        self.file = folder / f"scheduler-{time.monotonic_ns()}.json"
        dask = str(Path(sys.executable).parent / "dask")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "daemon"), os.environ.get("PYTHONPATH", "")])}
        self.scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                           "--no-dashboard", "--scheduler-file", str(self.file)],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < end:
            time.sleep(0.1)
        import json
        self.scheduler_address = json.loads(self.file.read_text())["address"]
        self.workers = subprocess.Popen([dask, "worker", "--scheduler-file", str(self.file), "--nworkers",
                                         str(workers), "--nthreads", str(threads), "--no-dashboard", "--host", "127.0.0.1"],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def worker_pids(self) -> list[int]:
        """The worker processes: `dask worker` runs their nannies and spawns one process each."""
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (d / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.workers.pid and b"spawn_main" in cmd:
                out.append(int(d.name))
        return sorted(out)

    def kill_scheduler(self) -> None:
        self.scheduler.kill()
        self.scheduler.wait()

    def close(self) -> None:
        for proc in (self.workers, self.scheduler):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _cluster(folder: Path, workers: int = 2, threads: int = 1) -> Cluster:
    return Cluster(folder, workers, threads)


def _fill(folder: Path, names=MIXED) -> dict[str, str]:
    for n in names:
        shutil.copyfile(DATA / n, folder / n)
    return {n: sha256(folder / n) for n in names}


def _by_name(rows: list[dict]) -> dict[str, dict]:
    return {Path(r["original_path"]).name: r for r in rows}


def _bursts(rows: dict[str, dict]) -> set[frozenset[str]]:
    groups = collections.defaultdict(set)
    for name, r in rows.items():
        if r["cluster_id"]:
            groups[r["cluster_id"]].add(name)
    return {frozenset(g) for g in groups.values()}


def _library_files(s: Starsort) -> dict[str, list[Path]]:
    out = collections.defaultdict(list)
    for p in s.library.rglob("*"):
        if p.is_file() and p.suffix.lower() != ".xmp":
            out[p.name].append(p)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = _cluster(tmp_path_factory.mktemp("dask"), 2)
    try:
        yield c
    finally:
        c.close()


def test_a_sort_on_the_cluster_gives_the_local_pools_report_and_files_each_photo_once(cluster, tmp_path):
    local = Starsort(tmp_path / "local")
    remote = Starsort(tmp_path / "remote")
    digests = _fill(local.src)
    _fill(remote.src)
    summary = local.sort().stderr.strip().splitlines()[-1]
    r = remote.sort("--scheduler", cluster.scheduler_address)
    assert r.stderr.strip().splitlines()[-1].split(";")[0] == summary.split(";")[0] == \
        "sorted 10, quarantined 0, failed 0"
    a, b = _by_name(local.report()), _by_name(remote.report())
    assert set(a) == set(b) == set(MIXED)
    for name in MIXED:
        for col in ("state", "stars", "faces", "blurry_faces", "rated_on", "is_pick", "error"):
            assert a[name][col] == b[name][col], (name, col, a[name][col], b[name][col])
    assert _bursts(a) == _bursts(b) and any(len(g) == 2 for g in _bursts(b))
    files = _library_files(remote)
    for name, digest in digests.items():
        assert len(files[name]) == 1, (name, files[name])             # exactly once
        assert sha256(files[name][0]) == digest                        # byte-identical
    assert list(remote.src.iterdir()) == []


def _variants(folder: Path, n: int) -> None:
    """n different photos (re-encoded at different qualities: other bytes, other hashes)."""
    from PIL import Image
    with Image.open(DATA / "kit_with_rose.jpg") as im:
        for i in range(n):
            im.save(folder / f"DSC{i:05d}.JPG", quality=60 + i)


def test_killing_a_dask_worker_mid_run_loses_nothing_and_files_nothing_twice(tmp_path):
    c = _cluster(tmp_path, 2)
    try:
        s = Starsort(tmp_path)
        _variants(s.src, 12)
        before = {p.name: sha256(p) for p in s.src.iterdir()}
        env = {**s.env, "STARSORT_CLUSTER_DOUBLE": "0.4"}
        proc = subprocess.Popen([sys.executable, "-m", "starsort", "sort", str(s.src), "--scheduler",
                                 c.scheduler_address, "--config", str(s.config)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 90
        while s.count("SELECT count(*) FROM photos WHERE state = 'done'") < 2 and time.monotonic() < end:
            time.sleep(0.1)
        pids = c.worker_pids()
        assert len(pids) == 2, pids
        os.kill(pids[0], signal.SIGKILL)                                 # mid-photo: its nanny starts another
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        files = _library_files(s)
        assert sorted(files) == sorted(before)
        for name, digest in before.items():
            assert len(files[name]) == 1 and sha256(files[name][0]) == digest
        assert s.count("SELECT count(*) FROM photos WHERE state = 'done'") == 12
    finally:
        c.close()


def test_a_path_mapped_worker_reads_through_the_mapping_and_an_unreadable_photo_names_the_workers(cluster, tmp_path):
    real = tmp_path / "nas"
    real.mkdir()
    s = Starsort(tmp_path / "coordinator")
    mount = tmp_path / "coordinator-mount"
    os.symlink(real, mount)                       # this machine sees the NAS at another path
    _variants(real, 3)
    env = {**s.env, "STARSORT_CLUSTER_DOUBLE": "0"}
    r = subprocess.run([sys.executable, "-m", "starsort", "sort", str(mount), "--scheduler", cluster.scheduler_address,
                        "--path-map", f"{mount}={real}", "--config", str(s.config)],
                       env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    sources = [row[0] for row in s.query("SELECT decode_source FROM photos")]
    assert sorted(sources) == sorted(f"double:{real}/DSC{i:05d}.JPG" for i in range(3))

    # A map to where no worker has the photos: each worker says so, then the photo is reported.
    s2 = Starsort(tmp_path / "second")
    _variants(s2.src, 1)
    r = subprocess.run([sys.executable, "-m", "starsort", "sort", str(s2.src), "--scheduler",
                        cluster.scheduler_address, "--path-map", f"{s2.src}=/nonexistent/nas", "-v",
                        "--config", str(s2.config)], env={**s2.env, "STARSORT_CLUSTER_DOUBLE": "0"},
                       capture_output=True, text=True, timeout=180)
    [(state, error)] = s2.query("SELECT state, error FROM photos")
    assert state == "failed" and "no worker can read it: /nonexistent/nas/DSC00000.JPG" in error, (state, error)
    assert r.stderr.count("cannot read /nonexistent/nas/DSC00000.JPG") >= 2           # both workers tried
    assert (s2.src / "DSC00000.JPG").exists()                                          # left where it was


def test_a_lost_scheduler_stops_sort_clearly_and_the_next_sort_resumes_without_filing_twice(tmp_path):
    s = Starsort(tmp_path)
    _variants(s.src, 16)
    before = {p.name: sha256(p) for p in s.src.iterdir()}
    env = {**s.env, "STARSORT_CLUSTER_DOUBLE": "0.3"}
    c = _cluster(tmp_path, 1)
    proc = subprocess.Popen([sys.executable, "-m", "starsort", "sort", str(s.src), "--scheduler",
                             c.scheduler_address, "--config", str(s.config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 60
    while s.count("SELECT count(*) FROM photos WHERE state = 'done'") < 3 and time.monotonic() < end:
        time.sleep(0.1)
    c.kill_scheduler()                                                # the scheduler goes away
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "lost the Dask scheduler" in err and "run the same `starsort sort` again" in err, err
    filed_first = s.count("SELECT count(*) FROM photos WHERE state = 'done'")
    assert 3 <= filed_first < 16
    c.close()
    c2 = _cluster(tmp_path, 1)
    try:
        r = subprocess.run([sys.executable, "-m", "starsort", "sort", str(s.src), "--scheduler", c2.scheduler_address,
                            "--config", str(s.config)], env=env, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
    finally:
        c2.close()
    files = _library_files(s)
    assert sorted(files) == sorted(before)
    for name, digest in before.items():
        assert len(files[name]) == 1 and sha256(files[name][0]) == digest


def test_a_photo_that_stops_two_workers_is_quarantined_and_the_rest_are_filed(cluster, tmp_path):
    s = Starsort(tmp_path)
    _variants(s.src, 3)
    shutil.copyfile(DATA / "ivan.jpg", s.src / "CRASHES-WORKER.jpg")    # the double exits on this name
    r = subprocess.run([sys.executable, "-m", "starsort", "sort", str(s.src), "--scheduler", cluster.scheduler_address,
                        "--config", str(s.config)], env={**s.env, "STARSORT_CLUSTER_DOUBLE": "0"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = _by_name(s.report())
    assert rows["CRASHES-WORKER.jpg"]["state"] == "quarantined"
    assert "Dask workers analysing it stopped" in rows["CRASHES-WORKER.jpg"]["error"]
    assert [rows[f"DSC{i:05d}.JPG"]["state"] for i in range(3)] == ["done"] * 3
    assert (s.library / "quarantine" / "CRASHES-WORKER.jpg").exists()


def test_photos_that_only_shared_a_worker_with_a_crashing_one_are_filed_not_quarantined(tmp_path):
    # One worker process with two threads: whatever runs or waits beside the crashing photo
    # dies with it, twice, and Dask gives up on all of them alike (KilledWorker). Retried
    # together they would die together again and be quarantined (before suspects went out
    # one at a time, one of the eight was, in two runs of three).
    c = _cluster(tmp_path, workers=1, threads=2)
    try:
        s = Starsort(tmp_path)
        _variants(s.src, 8)
        shutil.copyfile(DATA / "ivan.jpg", s.src / "CRASHES-WORKER.jpg")
        r = subprocess.run([sys.executable, "-m", "starsort", "sort", str(s.src), "--scheduler", c.scheduler_address,
                            "--config", str(s.config)], env={**s.env, "STARSORT_CLUSTER_DOUBLE": "0.2"},
                           capture_output=True, text=True, timeout=600)
    finally:
        c.close()
    assert r.returncode == 0, r.stderr
    rows = _by_name(s.report())
    assert rows["CRASHES-WORKER.jpg"]["state"] == "quarantined"
    assert {n: rows[n]["state"] for n in rows if n.startswith("DSC")} == {f"DSC{i:05d}.JPG": "done" for i in range(8)}


def _answers(pool, deadline: float = 120) -> list:
    got: list = []
    end = time.monotonic() + deadline
    while pool.busy() and time.monotonic() < end:
        got += pool.poll(1.0)
    return got


@pytest.mark.parametrize("together", [True, False], ids=["fetched-together", "fetched-one-by-one"])
def test_the_pool_answers_every_photo_once_whether_its_results_are_fetched_together_or_one_by_one(
        cluster, tmp_path, together):
    # Answers that finish together are fetched in one round trip; when that fails (a worker
    # holding one of them died since), each is asked for alone, and none is lost or doubled.
    from starsort.analysis.job import Status
    from starsort.cluster.pool import DaskPool
    from starsort.config import Config
    _variants(tmp_path, 12)
    photos = sorted(tmp_path.glob("DSC*.JPG"))
    pool = DaskPool(Config().model_dump_json(), cluster.scheduler_address, max_in_flight=len(photos), double=0.0)
    try:
        pool.wait_ready()
        fetched = []
        if together:
            real = pool.client.gather
            pool.client.gather = lambda futs, *a, **k: fetched.append(len(futs)) or real(futs, *a, **k)
        else:
            def refuse(*_a, **_k):
                raise OSError("connection to the worker lost")
            pool.client.gather = refuse
        ids = list(range(1, len(photos) + 1))
        for i, p in zip(ids, photos):
            assert pool.submit(i, str(p), "jpeg")
        from distributed import wait
        wait(list(pool.futures), timeout=120)       # all finished: one poll finds them together
        got = _answers(pool)
    finally:
        pool.close()
    assert sorted(a.photo_id for a in got) == ids
    assert {a.status for a in got} == {Status.OK}
    assert all(a.payload["photo_id"] == a.photo_id for a in got)
    if together:
        assert fetched == [len(ids)]
