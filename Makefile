# `make run` and `make test` work on a bare machine with python3 >= 3.11: each creates .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/montezuma
RUN_FRAMES ?= 3M

.PHONY: run test browser bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $@ $(VENV)/.core

# The default job: Go-Explore on Montezuma's Revenge with a bounded frame budget, stored in
# $(RUN_DIR) (run it again to continue an interrupted run); it ends with a short summary and
# the commands that come next (view, replay, resume, export).
run: $(VENV)/.core
	$(BIN)/stepstone explore montezuma --cells ram --frames $(RUN_FRAMES) --run-dir $(RUN_DIR)

# The page and MiniWoB++ tests drive a real Chromium through its driver, Debian's two packages:
# installed here where we can (root with apt-get); elsewhere those tests skip, except under CI,
# where they fail.
browser:
	@if ! { command -v chromium || command -v chromium-browser; } >/dev/null \
	    || ! command -v chromedriver >/dev/null; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	            chromium chromium-driver; \
	    else \
	        echo "note: no Chromium or chromedriver; the browser tests will skip" \
	            "(as root: apt-get install chromium chromium-driver)"; \
	    fi; \
	fi

test: $(VENV)/.dev browser
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python bench/throughput.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs build *.egg-info
