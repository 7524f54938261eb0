"""Desktop notifications: one when a problem is raised, one when it clears, one when a shoot drains."""
from __future__ import annotations

import shutil
import signal
import time

from starsort.service.notifications import Notice, Notices

from ..daemon import Daemon
from ..desktop import notification_daemon, notifications, screen, screenshot, session_bus
from ..helpers import DATA

SHOTS = __import__("pathlib").Path(__file__).resolve().parents[1] / "tray" / "screenshots"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _notices(clock: Clock, interval: float = 60.0, summary: dict | None = None) -> tuple[Notices, list[Notice]]:
    shown: list[Notice] = []
    return Notices(interval, shown.append, drained_summary=lambda since: summary or {}, clock=clock), shown


def _status(queue: int = 0, problems: dict | None = None, paused: bool = False) -> dict:
    problems = problems or {}
    return {"queue_depth": queue, "problem_kinds": list(problems), "problems": list(problems.values()),
            "paused": paused}


def test_a_problem_is_notified_once_when_raised_and_once_when_cleared():
    clock = Clock()
    n, shown = _notices(clock)
    full = {"library full": "library full: 3 photos waiting"}
    n.see(_status())
    for waiting in (3, 4, 5):                       # the count grows: still the same problem
        n.see(_status(problems={"library full": f"library full: {waiting} photos waiting"}))
        clock.t += 5
    assert [(s.title, s.body) for s in shown] == [
        ("starsort: library full", "library full: 3 photos waiting. Free space on the library's disk: filing resumes by itself.")]
    clock.t += 60
    n.see(_status())
    assert [s.title for s in shown] == ["starsort: library full", "starsort: library full — cleared"]
    assert shown[0].urgent and not shown[1].urgent
    n.see(_status(problems=full))
    clock.t += 1
    n.see(_status())
    assert len(shown) == 2                          # a flap inside the interval: nothing new shown


def test_a_flap_inside_the_interval_ends_in_the_true_state_once_the_interval_is_over():
    clock = Clock()
    n, shown = _notices(clock)
    n.see(_status(problems={"library missing": "library missing: /mnt/x"}))
    clock.t += 10
    n.see(_status())                                # cleared 10 s later: held back
    assert len(shown) == 1
    clock.t += 60
    n.see(_status())                                # interval over: the clearing is shown
    assert [s.title for s in shown] == ["starsort: library missing", "starsort: library missing — cleared"]


def test_a_drained_shoot_is_summarised_by_stars_and_quarantines():
    clock = Clock()
    summary = {"stars": {"5": 40, "4": 51, "3": 20, "2": 12, "1": 6}, "quarantined": 3}
    n, shown = _notices(clock, summary=summary)
    n.see(_status(queue=12))
    n.see(_status(queue=3))
    assert shown == []
    n.see(_status(queue=0))
    assert [(s.title, s.body) for s in shown] == [
        ("starsort: 129 photos filed", "5★ 40, 4★ 51, 3★ 20, 2★ 12, 1★ 6, 3 quarantined")]
    n.see(_status(queue=0))
    assert len(shown) == 1


def test_a_paused_queue_is_not_a_drained_shoot():
    clock = Clock()
    n, shown = _notices(clock, summary={"stars": {"5": 1}, "quarantined": 0})
    n.see(_status(queue=5, paused=True))
    n.see(_status(queue=0, paused=True))
    assert shown == []


def test_a_full_library_raises_exactly_one_desktop_notification_and_clearing_it_one_more(tmp_path):
    with screen() as display, session_bus(display) as env, notification_daemon(env, tmp_path) as log:
        full = tmp_path / "disk-is-full"
        full.touch()
        d = Daemon(tmp_path / "svc", settle=0.3, rescan=1.0, analyser="tests.faults.doubles:serve",
                   env={**env, "STARSORT_FAIL_AT": f"write,link:ENOSPC:{full}"})
        d.config.write_text(d.config.read_text() + "notifications:\n  min_interval_seconds: 0\n")
        d.start()
        try:
            d.wait(d.started, what="the service to start")
            for name in ("ivan.jpg", "clapton-2.jpg"):
                shutil.copyfile(DATA / name, d.inbox / name)
            d.wait(lambda: any("library full" in s for s, _, _ in notifications(log)), timeout=60,
                   what="the library-full notification")
            time.sleep(5)                          # retries every second meanwhile: still one
            SHOTS.mkdir(exist_ok=True)
            screenshot(env, SHOTS / "notification-library-full.png", crop="440x120+360+0")
            full.unlink()
            d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == 2, timeout=60,
                   what="filing once the disk has room")
            d.wait(lambda: any("cleared" in s for s, _, _ in notifications(log)), timeout=15,
                   what="the cleared notification")
            d.wait(lambda: any("filed" in s for s, _, _ in notifications(log)), timeout=15,
                   what="the drained-shoot notification")
            assert d.stop(signal.SIGTERM) == 0
        finally:
            d.close()
        got = notifications(log)
        about_full = [(s, u) for s, _, u in got if "library full" in s]
        assert about_full == [("starsort: library full", "CRITICAL"), ("starsort: library full — cleared", "NORMAL")]
        drained = [(s, b) for s, b, _ in got if s.endswith("filed")]
        assert drained and drained[-1][0] == "starsort: 2 photos filed", got


def test_no_notification_is_attempted_without_a_session_bus(tmp_path):
    d = Daemon(tmp_path, settle=0.3, analyser="tests.faults.doubles:serve",
               env={"DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": str(tmp_path / "no-runtime")})
    d.start()
    try:
        d.wait(lambda: "desktop notifications: off (no desktop session bus" in d.tail(), timeout=60,
               what="the service to say notifications are off")
    finally:
        d.close()
