"""The systemd user unit and the launchd agent parse and say what the docs promise."""
from __future__ import annotations

import configparser
import os
import plistlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import missing_desktop_tool

ROOT = Path(__file__).resolve().parent.parent
PLIST = ROOT / "launchd" / "com.starsort.daemon.plist"
UNIT = ROOT / "systemd" / "starsort.service"


class _MultiDict(dict):
    """Lets configparser keep every value of a key systemd allows to repeat."""

    def __setitem__(self, key, value):
        if key in self and isinstance(value, list) and isinstance(self[key], list):
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def load_unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(
        strict=False, dict_type=_MultiDict, empty_lines_in_values=False,
        interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(UNIT, encoding="utf-8")
    return parser


def values(unit: configparser.RawConfigParser, section: str, key: str) -> list[str]:
    return unit.get(section, key).split("\n")


@pytest.fixture(scope="module")
def plist() -> dict:
    with PLIST.open("rb") as f:
        return plistlib.load(f)


@pytest.fixture(scope="module")
def unit() -> configparser.RawConfigParser:
    return load_unit()


def test_plist_label_matches_its_file_name(plist):
    assert plist["Label"] == "com.starsort.daemon"
    assert PLIST.name == plist["Label"] + ".plist"


def test_plist_runs_at_load_and_restarts_only_after_a_failure(plist):
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ThrottleInterval"] >= 10


def test_plist_runs_starsort_in_the_foreground_from_the_home_placeholder(plist):
    assert plist["ProgramArguments"] == ["__HOME__/.local/bin/starsort", "run"]


def test_plist_logs_under_library_logs(plist):
    assert plist["StandardOutPath"] == "__HOME__/Library/Logs/starsort.log"
    assert plist["StandardErrorPath"] == "__HOME__/Library/Logs/starsort.err.log"


def test_plist_runs_at_background_priority_with_a_minimal_path(plist):
    assert plist["ProcessType"] == "Background"
    assert plist["LowPriorityIO"] is True
    assert plist["Nice"] == 10
    assert plist["EnvironmentVariables"]["PATH"].startswith("/usr/bin")


def test_plist_is_still_valid_after_the_documented_sed_substitution(plist):
    home = "/Users/ann marie"
    text = PLIST.read_text(encoding="utf-8").replace("__HOME__", home)

    installed = plistlib.loads(text.encode("utf-8"))

    assert installed["ProgramArguments"][0] == f"{home}/.local/bin/starsort"
    assert "__HOME__" not in text


def test_unit_restarts_on_failure(unit):
    assert unit.get("Service", "Restart") == "on-failure"
    assert unit.get("Service", "RestartSec") == "5"


def test_unit_runs_starsort_from_local_bin(unit):
    assert unit.get("Service", "ExecStart") == "%h/.local/bin/starsort run"


def test_unit_has_a_state_directory_for_the_database(unit):
    assert unit.get("Service", "StateDirectory") == "starsort"


def test_unit_runs_at_low_cpu_and_io_priority(unit):
    assert int(unit.get("Service", "Nice")) > 0
    assert unit.get("Service", "IOSchedulingClass") in {"idle", "best-effort"}
    assert unit.get("Service", "CPUSchedulingPolicy") == "batch"


def test_unit_makes_the_system_read_only_except_the_photo_folders(unit):
    assert unit.get("Service", "ProtectSystem") == "strict"
    assert unit.get("Service", "ProtectHome") == "read-only"
    assert "%h/Pictures/starsort" in values(unit, "Service", "ReadWritePaths")


def test_unit_allows_ip_only_on_loopback_for_the_review_page_and_no_new_privileges(unit):
    assert set(unit.get("Service", "RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert unit.get("Service", "IPAddressAllow") == "localhost"
    assert unit.get("Service", "IPAddressDeny") == "any"
    assert unit.get("Service", "NoNewPrivileges") == "yes"


def test_unit_does_not_deny_write_execute_memory_which_breaks_the_torch_jit(unit):
    assert not unit.has_option("Service", "MemoryDenyWriteExecute")


def test_unit_is_wanted_by_the_default_target(unit):
    assert unit.get("Install", "WantedBy") == "default.target"


def _analyze() -> str:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing_desktop_tool("systemd-analyze is not installed (Debian: systemd)")
    return analyze


def test_unit_is_type_notify_with_a_watchdog_the_loop_feeds(unit):
    assert unit.get("Service", "Type") == "notify"
    assert unit.get("Service", "NotifyAccess") == "main"
    watchdog = int(unit.get("Service", "WatchdogSec"))
    # The loop pings every third of it; a re-rate of a large library is one long turn.
    assert 60 <= watchdog <= 600


def test_unit_scores_at_most_3_0_in_systemd_analyze_security(tmp_path: Path):
    analyze = _analyze()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), SYSTEMD_COLORS="0")
    result = subprocess.run([analyze, "--user", "security", "--offline=true", "--no-pager", str(UNIT)],
                            env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    m = re.search(r"Overall exposure level for starsort\.service: ([0-9.]+)", output)
    assert m, output
    assert float(m.group(1)) <= 3.0, output
    # The review page still works: loopback IP stays allowed, nothing else.
    service = load_unit()
    assert set(" ".join(values(service, "Service", "RestrictAddressFamilies")).split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6"}


def test_unit_passes_systemd_analyze_verify_for_user_units(tmp_path: Path):
    analyze = _analyze()
    # verify checks that ExecStart= is executable, and a user manager needs a
    # runtime dir: give it a home with a stub starsort and a private runtime dir.
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    stub = home / ".local" / "bin" / "starsort"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    unit_copy = tmp_path / UNIT.name
    shutil.copyfile(UNIT, unit_copy)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime), SYSTEMD_LOG_LEVEL="notice")

    result = subprocess.run([analyze, "verify", "--user", str(unit_copy)],
                            env=env, capture_output=True, text=True, timeout=60)

    output = result.stdout + result.stderr
    if result.returncode != 0 and "Failed to initialize manager" in output:
        missing_desktop_tool(f"systemd-analyze cannot start a user manager here: {output.strip()}")
    assert result.returncode == 0, output
    # Unknown or misplaced keys are only warnings ("…, ignoring."): fail on them too.
    assert "ignoring" not in output.lower(), output
    assert "unknown" not in output.lower(), output


# ---- the tray's autostart files ------------------------------------------------------------------

DESKTOP = ROOT / "desktop" / "starsort-tray.desktop"
TRAY_PLIST = ROOT / "launchd" / "com.starsort.tray.plist"


def test_the_tray_autostart_entry_is_a_valid_xdg_application_that_runs_starsort_tray():
    entry = configparser.RawConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(DESKTOP, encoding="utf-8")
    e = entry["Desktop Entry"]
    assert e["Type"] == "Application" and e["Name"] and e["Terminal"] == "false"
    assert e["Exec"].endswith("""/.local/bin/starsort" tray'""")
    assert e.get("Hidden", "false") == "false"


def test_the_tray_launch_agent_runs_in_the_gui_session_and_stays_quit_after_quit():
    with TRAY_PLIST.open("rb") as f:
        p = plistlib.load(f)
    assert p["Label"] == TRAY_PLIST.stem
    assert p["ProgramArguments"] == ["__HOME__/.local/bin/starsort", "tray"]
    assert p["LimitLoadToSessionType"] == "Aqua"
    assert p["RunAtLoad"] is True and p["KeepAlive"] == {"SuccessfulExit": False}


def test_make_install_service_puts_the_unit_and_the_tray_autostart_in_place_and_uninstall_removes_them(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    # -o install: use this checkout's venv as it is, never reinstall it from a test.
    r = subprocess.run(["make", "-s", "-o", "install", "install-service", f"HOME={home}"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    unit = home / ".config" / "systemd" / "user" / "starsort.service"
    autostart = home / ".config" / "autostart" / "starsort-tray.desktop"
    assert unit.read_text() == UNIT.read_text()
    assert autostart.read_text() == DESKTOP.read_text()
    assert (home / ".local" / "bin" / "starsort").is_symlink()
    assert "systemctl --user daemon-reload" in r.stdout
    r = subprocess.run(["make", "-s", "uninstall-service", f"HOME={home}"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not unit.exists() and not autostart.exists() and not (home / ".local" / "bin" / "starsort").exists()
