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

.PHONY: install run test test-fast faults bench quality example install-service uninstall-service clean

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

# About 9 minutes on 2 cores; the count shows how far it is.
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
# (bench/bench_review.py, bench/review-results.md).
bench: install
	$(BIN)/python bench/bench_speed.py
	$(BIN)/python bench/bench_service.py
	$(BIN)/python bench/bench_review.py

# Ratings and bursts measured through the real pipeline (`starsort run --once`, then the
# report) on labelled sets built from ../shared/data (else tests/data): figures per blur kind
# and burst precision/recall, the held-out part apart from the tuning part. About 10 minutes
# on 2 cores the first time (building the sets), then 5. bench/calibrate_blur.py shows where the
# constants come from (tuning part only).
quality: install
	$(BIN)/python bench/quality.py

# Regenerate config/example.yaml from the schema (a test checks it is in step).
example: install
	$(BIN)/starsort config example > config/example.yaml

# Put `starsort` on the PATH the service files use (~/.local/bin/starsort).
install-service: install
	mkdir -p $(HOME)/.local/bin
	ln -sf $(abspath $(BIN)/starsort) $(HOME)/.local/bin/starsort
	@echo "linked $(HOME)/.local/bin/starsort; see README.md 'Run it as a service'"

uninstall-service:
	rm -f $(HOME)/.local/bin/starsort
	@echo "removed $(HOME)/.local/bin/starsort; see README.md 'Uninstall' for the unit, the plist and the data"

clean:
	rm -rf $(VENV) build *.egg-info daemon/*.egg-info .pytest_cache
