"""The tray follows what the service says, and its menu acts on the service; no desktop needed."""
from __future__ import annotations

from starsort.tray.app import Tray
from starsort.tray.client import Down


class FakeClient:
    def __init__(self) -> None:
        self.answer: dict | Exception = Down("not answering")
        self.paused_calls: list[bool] = []
        self.where = None

    def status(self) -> dict:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def set_paused(self, paused: bool) -> dict:
        self.paused_calls.append(paused)
        self.answer = {**self.answer, "paused": paused, "state": "paused" if paused else "idle",
                       "line": "intake paused" if paused else "idle · 3 filed today"}
        return self.answer


class FakeIcon:
    HAS_NOTIFICATION = False

    def __init__(self) -> None:
        self.icon = self.title = None
        self.menu_updates = 0
        self.stopped = False

    def update_menu(self) -> None:
        self.menu_updates += 1

    def stop(self) -> None:
        self.stopped = True


def _tray() -> tuple[Tray, FakeClient, FakeIcon]:
    client = FakeClient()
    tray = Tray(client, library=__import__("pathlib").Path("/lib"), inbox=__import__("pathlib").Path("/in"))
    tray.icon = FakeIcon()
    return tray, client, tray.icon


def test_the_tray_shows_down_while_the_service_does_not_answer_and_its_state_once_it_does():
    tray, client, icon = _tray()
    tray.poll()
    assert tray.state == "down" and icon.title.startswith("starsort: starsort is not running")
    client.answer = {"running": True, "state": "working", "line": "12 queued · 6.1 photos/s", "queue_depth": 12}
    tray.poll()
    assert tray.state == "working" and icon.title == "starsort: 12 queued · 6.1 photos/s"
    client.answer = {"running": False, "state": "down", "line": "starsort is not running"}
    tray.poll()
    assert tray.state == "down" and "no recent heartbeat" in icon.title


def test_an_unchanged_answer_does_not_redraw_the_icon():
    tray, client, icon = _tray()
    client.answer = {"running": True, "state": "idle", "line": "idle · 0 filed today", "queue_depth": 0}
    tray.poll()
    first = icon.icon
    tray.poll()
    assert icon.icon is first and icon.menu_updates == 1


def test_pause_and_resume_in_the_menu_ask_the_service_and_show_its_answer():
    tray, client, icon = _tray()
    client.answer = {"running": True, "state": "idle", "line": "idle · 3 filed today", "queue_depth": 0,
                     "paused": False}
    tray.poll()
    tray.toggle_pause()
    assert client.paused_calls == [True] and tray.state == "paused" and icon.title == "starsort: intake paused"
    tray.toggle_pause()
    assert client.paused_calls == [True, False] and tray.state == "idle"


def test_the_last_error_is_the_standing_problem_first_then_the_logged_error():
    tray, client, _ = _tray()
    client.answer = {"running": True, "state": "error", "line": "library full: 14 photos waiting",
                     "problems": ["library full: 14 photos waiting"],
                     "last_error": {"at": "2026-12-07T10:00:00", "message": "cannot read x"}}
    tray.poll()
    assert tray.last_error() == "library full: 14 photos waiting"
    client.answer = {**client.answer, "state": "idle", "problems": []}
    tray.poll()
    assert tray.last_error() == "2026-12-07T10:00:00: cannot read x"


def test_quit_stops_the_polling_loop_at_once_and_leaves_the_service_alone():
    tray, client, icon = _tray()
    tray.quit()
    assert tray.stop.is_set() and icon.stopped and client.paused_calls == []
