"""The packages' imports form a DAG that keeps each process's code in its own room.

    config, paths, crashpoints          (everyone)
    analysis/   the worker's stages     (never the database, never the library)
    store/      the database            (may use analysis's pure types and hash arithmetic)
    library/    files in the library    (store, analysis)
    intake/     the inboxes             (library's names, store)
    pipeline    the order               (analysis, library, store)
    web/        the review page         (store, and analysis's pure rating rule; never library:
                                         it only reads, and hands every change to the service)
    tray/       the tray icon           (nothing of starsort's: it talks to the service over HTTP,
                                         and the service never imports it)
    service/, cli/                      (anything but tray/, which only the CLI starts)

Only analysis/ imports torch: the service, the CLI (and a review page or a
tray later) must start without loading it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "daemon" / "starsort"

# Which starsort packages each may import (the top-level shared modules are allowed everywhere).
ALLOWED = {
    "analysis": {"analysis"},
    "store": {"store", "analysis"},
    "library": {"library", "store", "analysis"},
    "intake": {"intake", "library", "store", "analysis"},
    "pipeline": {"analysis", "library", "store"},
    "web": {"web", "store", "analysis"},
    "tray": {"tray"},
    "cluster": {"cluster", "analysis", "pipeline"},
    "service": {"service", "pipeline", "intake", "library", "store", "analysis", "web", "cluster"},
    "cli": {"cli", "service", "pipeline", "intake", "library", "store", "analysis", "web", "tray", "cluster"},
}
SHARED = {"config", "paths", "crashpoints", "pause", "__init__", "__main__"}
TORCH = {"torch", "torchvision", "facenet_pytorch"}
DATABASE = {"sqlite3", "sqlite_utils"}


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports, at the top or inside a function, as absolute names."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            # `from . import decode` imports the module starsort.analysis.decode
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _room(module: str) -> str:
    """The package (or shared module) a starsort module lives in."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = _modules()
IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_the_packages_below_it(name):
    room = _room(name)
    if room in SHARED:
        allowed = set()
    else:
        allowed = ALLOWED[room]
    bad = sorted(i for i in IMPORTS[name] if i.startswith("starsort.") and i in MODULES
                 and _room(i) not in allowed | SHARED)
    assert not bad, f"{name} ({room}/) imports {bad}"


def _reachable(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += [i for i in IMPORTS.get(m, ()) if i in MODULES]
    return seen


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _room(n) == "analysis"))
def test_analysis_never_reaches_the_database_or_the_library(name):
    reached = _reachable(name)
    external = {i.split(".")[0] for m in reached for i in IMPORTS[m]}
    assert not external & DATABASE, f"{name} reaches {sorted(external & DATABASE)}"
    assert not {m for m in reached if _room(m) in ("store", "library", "intake", "service", "cli")}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _room(n) != "analysis"))
def test_nothing_outside_analysis_imports_torch(name):
    direct = {i.split(".")[0] for i in IMPORTS[name]}
    assert not direct & TORCH, f"{name} imports {sorted(direct & TORCH)}"


def test_the_service_and_the_cli_start_without_torch_or_any_decoder():
    # Only workers read untrusted pixels (and pay for torch, OpenCV and LibRaw):
    # the service, the CLI and the pipeline's order itself load none of them.
    import subprocess
    import sys
    heavy = ("torch", "torchvision", "facenet_pytorch", "cv2", "rawpy", "PIL", "imagehash")
    code = ("import sys, starsort.cli, starsort.service, starsort.pipeline, starsort.web.app, starsort.web.server; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_package_graph_has_no_cycle():
    edges = {room: set() for room in ALLOWED}
    for name, imports in IMPORTS.items():
        src = _room(name)
        if src in SHARED:
            continue
        for i in imports:
            if i in MODULES and _room(i) not in SHARED and _room(i) != src:
                edges[src].add(_room(i))
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(path + [n])}")
        if state.get(n) == 2:
            return
        state[n] = 1
        for m in edges[n]:
            visit(m, path + [n])
        state[n] = 2
    for n in edges:
        visit(n, [])


def test_the_headless_service_never_imports_the_tray():
    # The service runs where there is no desktop at all (a server, a NAS):
    # it must not load pystray, a GUI toolkit or the tray's icons.
    for name in MODULES:
        if _room(name) in ("service", "pipeline", "store", "library", "intake", "web", "analysis"):
            assert not {m for m in _reachable(name) if _room(m) == "tray"}, name
    import subprocess
    import sys
    code = ("import sys, starsort.service.loop, starsort.cli; "
            "print(sorted(m for m in ('pystray', 'gi', 'Xlib', 'starsort.tray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
