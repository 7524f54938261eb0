"""Test hooks for fault injection; inert unless the environment asks for them.

The fault tests (tests/faults) kill the real daemon between the steps of a
move, SQLite's crash-at-the-Nth-operation method. The
steps call `hit(step)` right after the operation the name describes:

    write         a chunk of a cross-filesystem copy written to the temp file
    fsync_file    the temp file fsynced
    verify        the temp file read back and its SHA-256 compared
    link          a same-filesystem hard link of the source made
    link_tmp      the verified temp file linked (or renamed) into place
    fsync_dir     the destination folder fsynced
    unlink_tmp    the temp file removed
    unlink_src    a source removed from the inbox
    fsync_src_dir the inbox folder fsynced after that
    commit        a database write committed (the writer thread)
    shutdown      the service begins to shut down, after a stop signal

Variables, read once when this module is imported (so at process start):

    STARSORT_CRASH_AT=<step>:<n>     os._exit(137) right after the n-th `step`
    STARSORT_FAIL_AT=<step>[,<step>...]:<ERRNO>[:<flag file>]
                                     raise OSError(ERRNO) at every such step
                                     (while the flag file exists, if named)
    STARSORT_HANG_AT=<step>          block forever at the first `step` (a stop
                                     that does not stop)
    STARSORT_CRASH_TRACE=<file>      append each step's name to the file, so a
                                     test can count the calls before choosing n
    STARSORT_CLUSTER_DOUBLE=<seconds>  Dask workers answer with a fast analysis
                                     double taking that long (cluster/task.py)
    STARSORT_TEST_ANALYSER=<module>:<function>
                                     the analysis worker's main function
                                     (worker.Pool's `serve`); tests use a fast
                                     analyser when the analysis is not under test

None of them is meant for production use, and with none set `hit` is a
dictionary lookup.
"""
from __future__ import annotations

import errno as _errno
import importlib
import os
import threading

_crash: tuple[str, int] | None = None
_fail: tuple[frozenset[str], int, str | None] | None = None
_trace: str | None = os.environ.get("STARSORT_CRASH_TRACE") or None
_hang: str | None = os.environ.get("STARSORT_HANG_AT") or None
_counts: dict[str, int] = {}
_lock = threading.Lock()


def _parse() -> None:
    global _crash, _fail
    spec = os.environ.get("STARSORT_CRASH_AT")
    if spec:
        step, _, n = spec.partition(":")
        _crash = (step, int(n or 1))
    spec = os.environ.get("STARSORT_FAIL_AT")
    if spec:
        step, _, rest = spec.partition(":")
        name, _, flag = rest.partition(":")
        _fail = (frozenset(step.split(",")), getattr(_errno, name or "EIO"), flag or None)


_parse()
ACTIVE = bool(_crash or _fail or _trace or _hang)


def hit(step: str) -> None:
    if not ACTIVE:
        return
    with _lock:
        n = _counts[step] = _counts.get(step, 0) + 1
        if _trace:
            with open(_trace, "a") as f:
                f.write(f"{step}\n")
    if _fail and step in _fail[0] and (_fail[2] is None or os.path.exists(_fail[2])):
        raise OSError(_fail[1], f"{os.strerror(_fail[1])} (injected at {step})")
    if _crash and _crash == (step, n):
        os._exit(137)
    if _hang == step:
        threading.Event().wait()


def cluster_double() -> float | None:
    """STARSORT_CLUSTER_DOUBLE=<seconds>: Dask workers answer with a fast analysis double that
    takes that long (benchmarks of the coordinator, cluster fault tests); unset: the real one."""
    v = os.environ.get("STARSORT_CLUSTER_DOUBLE")
    return float(v) if v else None


def test_analyser():
    """The worker main function named by STARSORT_TEST_ANALYSER, else None (the real one)."""
    spec = os.environ.get("STARSORT_TEST_ANALYSER")
    if not spec:
        return None
    module, _, fn = spec.partition(":")
    return getattr(importlib.import_module(module), fn)
