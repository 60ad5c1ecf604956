# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run worker test install lint typecheck pytest browser-deps migrate demo serve clean

# Create the virtualenv and install the project with its dev tools (re-run when pyproject changes).
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# --- make run: the site with demo data on http://$(HOST):$(PORT) --------------------------------
# With DATABASE_URL/REDIS_URL unset it uses SQLite and the in-memory channel layer.
run: export DEBUG ?= 1
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/daphne -b $(HOST) -p $(PORT) travelsite.asgi:application

# --- make worker: runs background jobs (notification emails) as they come due -------------------
# Same DATABASE_URL as the site; run one or more next to daphne (see README "Background jobs").
worker: install
	$(BIN)/python manage.py db_worker

# --- make test: lint, types and the whole suite -------------------------------------------------
test: install browser-deps lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

# The suite in two parts: everything but the browser tests on $(TEST_WORKERS) pytest-xdist
# workers (each with its own PostgreSQL database and Redis: travelsite/settings.py), then the
# browser tests alone, whose timings should not share the cores with other tests. A part that
# selects no test (exit status 5, e.g. PYTEST_ARGS=tests/chat) is not a failure.
# JUNIT_DIR=dir writes dir/parallel.xml and dir/browser.xml.
TEST_WORKERS ?= 2
pytest: install
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not browser" $(PYTEST_ARGS) \
	  $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/parallel.xml); \
	  status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ] || exit $$status
	$(BIN)/pytest -m browser $(PYTEST_ARGS) $(if $(JUNIT_DIR),--junitxml=$(JUNIT_DIR)/browser.xml); \
	  status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ] || exit $$status

# Browser tests drive Debian's Chromium (no browser can be downloaded here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Browser tests need Chromium: sudo apt-get install chromium"; exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

# Load benchmarks against live servers (needs the local PostgreSQL and Redis; see bench/README.md).
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)
