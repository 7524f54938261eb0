"""Running `starsort sort`/`undo`/`report` as a user would: a subprocess with its own config."""
from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """{relative path: SHA-256} of every file under root, hidden ones included."""
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


class Starsort:
    def __init__(self, root: Path, **config: str):
        self.root = root
        self.src = root / "shoot"
        self.library = root / "library"
        self.db = root / "state" / "starsort.db"
        self.config = root / "config.yaml"
        self.src.mkdir(parents=True, exist_ok=True)
        lines = [f"inboxes: [{root / 'inbox'}]", f"library: {self.library}", f"database: {self.db}"]
        xmp = {k[4:]: v for k, v in config.items() if k.startswith("xmp_") and k != "xmp_in_jpeg"}
        if "xmp_in_jpeg" in config:
            xmp["xmp_in_jpeg"] = config["xmp_in_jpeg"]
        lines += [f"{k}: {v}" for k, v in config.items() if not k.startswith("xmp_")]
        if xmp:
            lines.append("xmp:")
            lines += [f"  {k}: {v}" for k, v in xmp.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, "HOME": str(root), "XDG_CONFIG_HOME": str(root / "cfg"),
                    "XDG_STATE_HOME": str(root / "xdgstate")}

    def cli(self, *args: str, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "starsort", *args, "--config", str(self.config)],
                           env=self.env, capture_output=True, text=True, timeout=timeout)
        if ok:
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        return r

    def sort(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        return self.cli("sort", str(self.src), *args, ok=ok)

    def report(self) -> list[dict]:
        return list(csv.DictReader(io.StringIO(self.cli("report", "--format", "csv").stdout)))
