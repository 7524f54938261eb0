"""The review page as a photographer reaches it: served by the running service (or by `starsort
review` alone), overrides carried out by the service's deciding thread through its journal, and
the library's folders watched for decisions made in a file manager."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..daemon import Daemon
from ..helpers import DATA, files, read_xmp, sha256

SETTLE = 0.3


def _served(d: Daemon) -> None:
    d.wait(d.started, what="the service to start")
    d.wait(lambda: d.query("SELECT review_port FROM service WHERE review_port > 0"), what="the review page")


def _rating(path: str | Path) -> str | None:
    sidecar = Path(path).with_suffix(".xmp")
    return read_xmp(sidecar).get("Xmp.xmp.Rating") if sidecar.exists() else None


def _rated(d: Daemon, path: Path, rating: str) -> None:
    # The rating is rewritten just after the files are in their new folder, so a test that
    # sees the move must still wait for it.
    d.wait(lambda: _rating(path) == rating, timeout=10, what=f"{path.name}'s sidecar to say {rating}")


def test_pressing_2_through_the_api_moves_a_pair_and_its_sidecar_into_2_stars_within_seconds(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE, analyser="tests.faults.doubles:serve")
    shutil.copyfile(DATA / "two_people.ARW", d.inbox / "DSC00001.ARW")
    shutil.copyfile(DATA / "ivan.jpg", d.inbox / "DSC00001.JPG")
    d.start()
    try:
        _served(d)
        d.wait(lambda: d.query("SELECT id FROM photos WHERE state = 'done'"), what="the pair to be filed")
        status, rows = d.api("GET", "/api/photos")
        assert status == 200 and len(rows) == 1
        photo = rows[0]
        before = {Path(p).name: sha256(p) for p in (photo["current_path"], photo["pair_path"])}

        t0 = time.monotonic()
        assert d.api("POST", f"/api/photos/{photo['id']}", {"stars": 2})[0] == 202
        d.wait(lambda: "2-stars" in (d.api("GET", f"/api/photos/{photo['id']}")[1]["current_path"] or ""),
               timeout=10, what="the move into 2-stars")
        moved_in = time.monotonic() - t0

        two = d.library / "2-stars"
        assert sorted(p.name for p in two.iterdir()) == ["DSC00001.ARW", "DSC00001.JPG", "DSC00001.xmp"]
        assert {n: sha256(two / n) for n in before} == before
        _rated(d, two / "DSC00001.ARW", "2")
        after = d.api("GET", f"/api/photos/{photo['id']}")[1]
        assert (after["stars"], after["decided_by"]) == (2, "photographer")
        assert moved_in < 5, moved_in
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()
    # And `undo --all` takes it from 2-stars back to the inbox.
    d.cli("undo", "--all")
    assert sorted(p.name for p in d.inbox.iterdir()) == ["DSC00001.ARW", "DSC00001.JPG"]
    assert files(d.library, hidden=False) == []


def test_a_photo_dragged_between_star_folders_is_the_photographers_decision_and_its_partner_follows(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE, analyser="tests.faults.doubles:serve")
    shutil.copyfile(DATA / "two_people.ARW", d.inbox / "DSC00002.ARW")
    shutil.copyfile(DATA / "ivan.jpg", d.inbox / "DSC00002.JPG")
    d.start()
    try:
        _served(d)
        d.wait(lambda: d.query("SELECT current_path FROM photos WHERE state = 'done'"), what="the pair to be filed")
        [(current, stars)] = d.query("SELECT current_path, stars FROM photos")
        target_stars = 1 if stars != 1 else 3
        target = d.library / ("1-star" if target_stars == 1 else "3-stars")
        os.rename(current, target / Path(current).name)            # as a file manager moves it

        d.wait(lambda: d.query("SELECT stars, decided_by FROM photos") == [(target_stars, "photographer")],
               timeout=15, what="the move to be taken as a decision")
        d.wait(lambda: (target / "DSC00002.JPG").exists() and (target / "DSC00002.xmp").exists(), timeout=10,
               what="the JPEG and the sidecar to follow")
        _rated(d, target / "DSC00002.ARW", str(target_stars))
        assert [p for p in files(d.library, hidden=False) if p.parent != target] == []
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()


def test_review_url_prints_the_address_with_its_token_and_the_page_signs_in_with_it(tmp_path):
    import urllib.request
    d = Daemon(tmp_path, settle=SETTLE, analyser="tests.faults.doubles:serve")
    d.start()
    try:
        _served(d)
        url = d.cli("review", "--url").stdout.strip()
        token = (d.db.parent / "review-token").read_text().strip()
        [(port,)] = d.query("SELECT review_port FROM service")
        assert url == f"http://127.0.0.1:{port}/?token={token}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(url, timeout=10) as r:                      # the redirect sets the cookie
            assert r.status == 200 and "/static/app.js" in r.read().decode()
            assert "token" not in r.url
        with opener.open(f"http://127.0.0.1:{port}/api/status", timeout=10) as r:
            assert r.status == 200
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()


def test_with_the_service_stopped_review_serves_the_page_itself_with_the_same_journal(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE, analyser="tests.faults.doubles:serve")
    shutil.copyfile(DATA / "ivan.jpg", d.inbox / "IMG_1.jpg")
    d.once(ok=True)
    [(photo_id, current)] = d.query("SELECT id, current_path FROM photos")
    assert d.cli("review", "--url", ok=False).returncode == 1          # nothing serves it now

    proc = subprocess.Popen([sys.executable, "-m", "starsort", "review", "--no-browser", "--config", str(d.config)],
                            env=d.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = proc.stdout.readline().strip()
        while not url.startswith("http"):
            assert proc.poll() is None, url
            url = proc.stdout.readline().strip()
        assert d.api("POST", f"/api/photos/{photo_id}", {"reject": True})[0] == 202
        d.wait(lambda: d.query("SELECT rejected FROM photos") == [(1,)], timeout=15, what="the reject")
        d.wait(lambda: (d.library / "rejected" / "IMG_1.jpg").exists(), timeout=10, what="the move")
        _rated(d, d.library / "rejected" / "IMG_1.jpg", "-1")
        assert not Path(current).exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_rerate_dry_run_says_what_a_new_threshold_would_move_and_rerate_moves_it(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE)
    for name in ("kit_with_rose.jpg", "clapton-2.jpg", "no-faces.jpg", "two_people_defocus.ARW"):
        shutil.copyfile(DATA / name, d.inbox / name)
    d.once(ok=True)
    assert dict(d.query("SELECT original_path, stars FROM photos")) == {
        str(d.inbox / "kit_with_rose.jpg"): 5, str(d.inbox / "clapton-2.jpg"): 5,
        str(d.inbox / "no-faces.jpg"): 4, str(d.inbox / "two_people_defocus.ARW"): 1}
    scores = sorted(float(s) for (fs,) in d.query("SELECT face_scores FROM photos")
                    for s in fs.strip("[]").split(",") if s.strip())
    # A threshold just above the sharpest face: every face is blurry. The sharp ones are soft
    # at worst (at least 3 % of it): 2 stars; the defocused pair stays at 1, the photo without
    # faces at 4.
    threshold = round(scores[-1] + 1, 1)
    d.config.write_text(d.config.read_text() + f"blur:\n  threshold: {threshold}\n")
    dry = d.cli("rerate", "--dry-run").stdout
    assert "2 photo(s) change stars" in dry and "5★ -> 2★: 2" in dry
    before = sorted(p.name for p in files(d.library, hidden=False))

    d.cli("rerate")

    assert sorted(p.name for p in files(d.library, hidden=False)) == before
    folders = {p.stem: p.parent.name for p in files(d.library, hidden=False) if p.suffix != ".xmp"}
    assert folders == {"kit_with_rose": "2-stars", "clapton-2": "2-stars", "no-faces": "4-stars",
                       "two_people_defocus": "1-star"}
    assert "0 photo(s) change stars" in d.cli("rerate", "--dry-run").stdout


def test_with_the_page_turned_off_nothing_listens(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE, analyser="tests.faults.doubles:serve")
    d.config.write_text(d.config.read_text().replace("review:\n", "review:\n  enabled: false\n"))
    d.start()
    try:
        d.wait(d.started, what="the service to start")
        time.sleep(1)
        assert d.query("SELECT review_port FROM service") == [(None,)]
        assert d.cli("review", "--url", ok=False).returncode == 1
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()


def test_photos_filed_before_there_were_previews_get_them_in_the_background(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE)
    d.config.write_text(d.config.read_text().replace("review:\n", "review:\n  enabled: false\n"))
    for name in ("ivan.jpg", "two_people.ARW"):
        shutil.copyfile(DATA / name, d.inbox / name)
    d.once(ok=True)
    assert d.query("SELECT count(*) FROM photos WHERE state = 'done' AND preview IS NULL") == [(2,)]
    d.config.write_text(d.config.read_text().replace("  enabled: false\n", ""))

    # The page on its own: its worker makes previews only, and never loads torch.
    proc = subprocess.Popen([sys.executable, "-m", "starsort", "review", "--no-browser", "--config", str(d.config)],
                            env=d.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        d.wait(lambda: d.query("SELECT count(*) FROM photos WHERE preview IS NOT NULL AND preview != ''") == [(2,)],
               timeout=60, what="previews for both photos")
        for (key,) in d.query("SELECT preview FROM photos"):
            assert (d.root / "previews" / key[:2] / f"{key}-s.jpg").is_file()
            assert (d.root / "previews" / key[:2] / f"{key}-l.jpg").is_file()
        status, row = d.api("GET", "/api/photos/1")
        assert status == 200 and row["preview"]
        worker = [p for p in _children(proc.pid) if p != proc.pid]
        assert worker and all("torch" not in Path(f"/proc/{p}/maps").read_text() for p in worker)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
            except OSError:
                continue
    return out


def test_a_threshold_applied_from_the_page_stays_in_force_until_config_yaml_is_edited(tmp_path):
    d = Daemon(tmp_path, settle=SETTLE)
    for name in ("clapton-2.jpg", "kit_with_rose.jpg"):
        shutil.copyfile(DATA / name, d.inbox / name)
    d.start()
    try:
        _served(d)
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == 2, timeout=120,
               what="both photos filed")
        scores = [float(s) for (fs,) in d.query("SELECT face_scores FROM photos") for s in fs.strip("[]").split(",")]
        high = round(max(scores) + 1, 1)
        assert d.api("GET", f"/api/whatif?threshold={high}")[1]["changes"] == 2
        assert d.api("POST", "/api/rerate", {"threshold": high})[0] == 202
        # Every face below the new threshold, but soft: 2 stars.
        d.wait(lambda: d.query("SELECT DISTINCT stars FROM photos") == [(2,)], timeout=60, what="the re-rate")
        assert d.api("GET", "/api/status")[1]["blur_threshold"] == high
        # A photo that lands now is rated at the threshold in force, by restarted workers:
        # multiface's sharpest face (46) earns 5 stars at 10.0, and is soft at `high`.
        shutil.copyfile(DATA / "multiface.jpg", d.inbox / "multiface.jpg")
        d.wait(lambda: d.count("SELECT count(*) FROM photos WHERE state = 'done'") == 3, timeout=120,
               what="the new photo filed")
        [(new_stars, new_scores)] = d.query("SELECT stars, face_scores FROM photos WHERE original_path LIKE '%multiface%'")
        assert max(float(s) for s in new_scores.strip("[]").split(",")) < high and new_stars == 2
        assert d.stop(signal.SIGTERM) == 0
    finally:
        d.close()
    status = json.loads(d.cli("status", "--json").stdout)
    assert status["blur_threshold"] == high and status["settings"]["blur.threshold"]["config_value"] == 10.0
    assert "set from the review page" in d.cli("status").stdout
    # Editing config.yaml is the newer decision: it wins.
    d.config.write_text(d.config.read_text() + "blur:\n  threshold: 9.0\n")
    status = json.loads(d.cli("status", "--json").stdout)
    assert status["blur_threshold"] == 9.0 and status["settings"] == {}
