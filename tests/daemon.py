"""starsort as a subprocess on its own folders, as a user runs it: the daemon (`Daemon`, for
tests/service and tests/faults) and the one-shot commands `sort`/`undo`/`report` (`Starsort`,
for tests/cli and tests/library) share one harness."""
from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Variables the fault tests set to steer the daemon; a run starts without any it did not ask for.
TEST_VARIABLES = ("STARSORT_CRASH_AT", "STARSORT_FAIL_AT", "STARSORT_CRASH_TRACE", "STARSORT_TEST_ANALYSER",
                  "STARSORT_CLUSTER_DOUBLE",
                  "STARSORT_FAKE_DELAY")


def config_yaml(settings: dict) -> str:
    """A config file's text: `key: value` lines, a dict value as an indented section."""
    lines = []
    for key, value in settings.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {v}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


class Harness:
    """What every starsort subprocess shares: its folders under `root`, a config file that names
    them, a HOME and XDG folders of its own, the CLI and the report."""

    def __init__(self, root: Path, settings: dict, *, library: Path | None = None, env: dict | None = None):
        self.root = root
        self.inbox = root / "inbox"
        self.library = library or root / "library"
        self.db = root / "state" / "starsort.db"
        self.config = root / "config.yaml"
        root.mkdir(parents=True, exist_ok=True)
        # The review page on a free port (never one a real starsort may hold), previews beside the rest.
        settings = dict(settings)
        review = {"port": 0, "previews": root / "previews", **settings.pop("review", {})}
        self.config.write_text(config_yaml({"inboxes": f"[{self.inbox}]", "library": self.library,
                                            "database": self.db, **settings, "review": review}))
        self.env = {**os.environ, "HOME": str(root), "XDG_CONFIG_HOME": str(root / "cfg"),
                    "XDG_STATE_HOME": str(root / "xdgstate"),
                    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        for k in TEST_VARIABLES:
            self.env.pop(k, None)
        self.env.update(env or {})

    def cli(self, *args: str, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """`starsort ARGS --config CONFIG`; with ok, it must exit 0."""
        r = subprocess.run([sys.executable, "-m", "starsort", *args, "--config", str(self.config)],
                           env=self.env, capture_output=True, text=True, timeout=timeout)
        if ok:
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        return r

    def report(self) -> list[dict]:
        return list(csv.DictReader(io.StringIO(self.cli("report", "--format", "csv").stdout)))

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 10) -> tuple[int, object]:
        """The running service's JSON API, as a script uses it: Bearer token, no cookie."""
        import json
        import urllib.error
        import urllib.request
        [(port,)] = self.query("SELECT review_port FROM service WHERE id = 1")
        token = (self.db.parent / "review-token").read_text().strip()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def count(self, sql: str) -> int:
        r = self.query(sql)
        return r[0][0] if r and r[0][0] is not None else 0


class Starsort(Harness):
    """The one-shot commands on a folder of photos, `src`; keyword arguments are config settings,
    those named xmp_* in the xmp section (`xmp_sidecar_naming="ext"` is xmp.sidecar_naming)."""

    def __init__(self, root: Path, **config: str | dict):
        xmp = {k[4:]: v for k, v in config.items() if k.startswith("xmp_") and k != "xmp_in_jpeg"}
        if "xmp_in_jpeg" in config:
            xmp["xmp_in_jpeg"] = config["xmp_in_jpeg"]
        top = {k: v for k, v in config.items() if not k.startswith("xmp_")}
        super().__init__(root, {**top, **({"xmp": xmp} if xmp else {})})
        self.src = root / "shoot"
        self.src.mkdir(parents=True, exist_ok=True)

    def sort(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        return self.cli("sort", str(self.src), *args, ok=ok)


class Daemon(Harness):
    """starsort as a subprocess on its own folders; `analyser` names a test double
    (tests/faults/doubles.py) in place of the real pipeline."""

    def __init__(self, root: Path, *, library: Path | None = None, settle: float = 0.3,
                 rescan: float = 2.0, analyser: str | None = None, mode: str = "move",
                 env: dict | None = None, xmp: bool = True):
        super().__init__(root, {"mode": mode, "settle_seconds": settle, "rescan_interval": rescan,
                                "xmp": {"enabled": "true" if xmp else "false"}},
                         library=library, env={**({"STARSORT_TEST_ANALYSER": analyser} if analyser else {}),
                                               **(env or {})})
        self.logfile = root / "daemon.log"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self._log = None

    def _cmd(self, once: bool) -> list[str]:
        return [sys.executable, "-m", "starsort", "run", "--config", str(self.config), *(["--once"] if once else [])]

    def once(self, env: dict | None = None, timeout: float = 600, ok: bool = False) -> subprocess.CompletedProcess:
        """`starsort run --once`, its output appended to the log; with ok, it must exit 0."""
        with open(self.logfile, "a") as log:
            log.write(f"\n==== run --once {env or ''}\n")
            log.flush()
            r = subprocess.run(self._cmd(True), env={**self.env, **(env or {})}, stdout=log,
                               stderr=subprocess.STDOUT, timeout=timeout)
        if ok:
            assert r.returncode == 0, self.tail(3000)
        return r

    def start(self, env: dict | None = None) -> subprocess.Popen:
        self._log = open(self.logfile, "a")
        self._log.write(f"\n==== run {env or ''}\n")
        self._log.flush()
        self.proc = subprocess.Popen(self._cmd(False), env={**self.env, **(env or {})}, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        return self.proc

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        if self._log:
            self._log.close()
            self._log = None
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return self.kill(sig)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def wait(self, pred, timeout: float = 120, what: str = "", interval: float = 0.2) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited early ({self.proc.returncode}):\n{self.tail()}")
            if pred():
                return
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.tail()}")

    def started(self) -> bool:
        return bool(self.query("SELECT heartbeat_at FROM service WHERE pid = ?", (self.proc.pid,)))

    def tail(self, n: int = 4000) -> str:
        return self.logfile.read_text(errors="replace")[-n:] if self.logfile.exists() else ""

    def errors(self) -> list[str]:
        """ERROR lines in the log, and ERROR events in the database."""
        lines = [ln for ln in self.tail(10**9).splitlines() if " ERROR " in ln or ln.startswith("ERROR")]
        return lines + [m for (m,) in self.query("SELECT message FROM events WHERE level = 'ERROR'")]

    def rss_kb(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except (OSError, AttributeError):
            return None
        return None
