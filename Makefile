# starsort: `make run` starts the service on the default config, `make test` runs the tests.
# Both install into .venv first if needed (`make install`).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned here to the release this build machine holds on disk (pip takes
# it without downloading). Override for another machine, e.g.
#   make install TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed

.PHONY: install install-tray install-cluster run test test-fast faults bench quality example install-service uninstall-service clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "first run: installing starsort into $(VENV) (torch is about 5.5 GB; 2-5 minutes on a 2-core machine)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing $(TORCH) (the longest step) ..."
	$(BIN)/python -m pip install --quiet $(TORCH)
	@echo "installing starsort and its other dependencies ..."
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)
	@echo "installed: $(BIN)/starsort"

run: install
	$(BIN)/starsort run

# About 17 minutes on 2 cores; the count shows how far it is.
test: install
	$(BIN)/python -m pytest -q -o console_output_style=count

# The long fault-injection suite (tests/faults; `make test` runs it short):
# every crash point, 130 kill/restart cycles, a 1,200-file burst, 6,000 files
# behind a frozen daemon. About 20 minutes; figures in .faults-results.json.
faults: install
	STARSORT_FAULTS_LONG=1 $(BIN)/python -m pytest -q -s tests/faults

# Unit tests only: no observers, no subprocesses.
test-fast: install
	$(BIN)/python -m pytest -q -m "not integration and not e2e"

# The speed benchmark: starsort against the seed-style pipeline on
# 24 MP photos, generated into bench/.cache; writes bench/results.md. Then the
# service's own CPU per photo at 1,000 and 20,000 near-identical frames, and
# per idle rescan (bench/bench_service.py). About 20 minutes on 2 cores. The
# narrower scripts stay runnable by hand: bench/bench_analysis.py
# (calibration), bench_cluster.py, bench_pipeline.py, profile_analysis.py,
# compare_report.py (two revisions' decisions on the same photos). Then the
# review page: a 10,000-photo grid in Chromium, thumbnails, filed -> visible,
# its memory, and analysis throughput with and without its previews
# (bench/bench_review.py, bench/review-results.md). Then people: embedding per
# face, find among 100k and 1M faces, grouping a batch (bench/bench_people.py).
# Then `sort` on Dask against the local pool, and the coordinator's ceiling
# (bench/bench_dask.py, bench/dask-results.md).
bench: install
	$(BIN)/python bench/bench_speed.py
	$(BIN)/python bench/bench_service.py
	$(BIN)/python bench/bench_review.py
	$(BIN)/python bench/bench_people.py
	$(BIN)/python bench/bench_dask.py

# Ratings and bursts measured through the real pipeline (`starsort run --once`, then the
# report) on labelled sets built from ../shared/data (else tests/data): figures per blur kind
# and burst precision/recall, the held-out part apart from the tuning part. About 10 minutes
# on 2 cores the first time (building the sets), then 5. bench/calibrate_blur.py shows where the
# constants come from (tuning part only).
quality: install
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/people_quality.py

# Regenerate config/example.yaml from the schema (a test checks it is in step).
example: install
	$(BIN)/starsort config example > config/example.yaml

# What the tray icon needs here: on Linux, PyGObject for its menu (built from source,
# with the system headers it needs; says what it installs). See scripts/install-tray.sh.
install-tray: install
	sh scripts/install-tray.sh $(VENV)

# `starsort sort --scheduler`: Dask's distributed scheduler, on the coordinator and on
# every worker machine (README.md, "Many machines").
install-cluster: install
	$(BIN)/python -m pip install --quiet -e '.[cluster]'
	@echo "installed dask[distributed]: $(BIN)/dask scheduler, $(BIN)/dask worker"

# Put `starsort` on the PATH the service files use (~/.local/bin/starsort), and the
# service and tray files where the platform's service manager and session look:
#   Linux  ~/.config/systemd/user/starsort.service, ~/.config/autostart/starsort-tray.desktop
#   macOS  ~/Library/LaunchAgents/com.starsort.daemon.plist and com.starsort.tray.plist
# Starting them is yours to do (the commands are printed): README.md 'Run it as a service'.
UNAME := $(shell uname -s)
install-service: install
	mkdir -p $(HOME)/.local/bin
	ln -sf $(abspath $(BIN)/starsort) $(HOME)/.local/bin/starsort
	@echo "linked $(HOME)/.local/bin/starsort"
ifeq ($(UNAME),Darwin)
	mkdir -p $(HOME)/Library/LaunchAgents $(HOME)/Library/Logs
	sed "s|__HOME__|$(HOME)|g" launchd/com.starsort.daemon.plist > $(HOME)/Library/LaunchAgents/com.starsort.daemon.plist
	sed "s|__HOME__|$(HOME)|g" launchd/com.starsort.tray.plist > $(HOME)/Library/LaunchAgents/com.starsort.tray.plist
	@echo "installed ~/Library/LaunchAgents/com.starsort.daemon.plist and com.starsort.tray.plist; start them with"
	@echo "  launchctl bootstrap gui/$$(id -u) ~/Library/LaunchAgents/com.starsort.daemon.plist"
	@echo "  launchctl bootstrap gui/$$(id -u) ~/Library/LaunchAgents/com.starsort.tray.plist"
else
	mkdir -p $(HOME)/.config/systemd/user $(HOME)/.config/autostart
	cp systemd/starsort.service $(HOME)/.config/systemd/user/starsort.service
	cp desktop/starsort-tray.desktop $(HOME)/.config/autostart/starsort-tray.desktop
	@echo "installed ~/.config/systemd/user/starsort.service and ~/.config/autostart/starsort-tray.desktop"
	@echo "start the service with: systemctl --user daemon-reload && systemctl --user enable --now starsort"
	@echo "the tray starts at your next login (now: starsort tray &); for its menu: make install-tray"
endif

# Stop the service and the tray first (README.md 'Uninstall'); the database, the config
# and your photos are left alone.
uninstall-service:
	rm -f $(HOME)/.local/bin/starsort
	rm -f $(HOME)/.config/systemd/user/starsort.service $(HOME)/.config/autostart/starsort-tray.desktop
	rm -f $(HOME)/Library/LaunchAgents/com.starsort.daemon.plist $(HOME)/Library/LaunchAgents/com.starsort.tray.plist
	@echo "removed ~/.local/bin/starsort, the service unit or LaunchAgents, and the tray's autostart entry"

clean:
	rm -rf $(VENV) build *.egg-info daemon/*.egg-info .pytest_cache
