# Everything a fresh machine needs is installed by these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := tests/interop
UVICORN_WS ?= websockets-sansio
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-floors bench venv run-venv node chromium redis nginx typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# What the tests, the benchmark and the type check need: the package with its dev extra.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# What the example app needs, and no more: the package with its server extra (uvicorn, websockets).
run-venv: $(VENV)/.installed-run
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[server]'
	touch $@

# The interop tests' clients; the example app serves socket.io-client's browser bundle from here.
node: $(NODE_DIR)/node_modules/.installed
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm install --no-audit --no-fund --loglevel=error
	touch $@

# Debian's redis-server backs the Redis adapter tests (each test starts its own on a free port).
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null; }

# Debian's nginx runs the README's sticky-session recipe in front of two processes.
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light) >/dev/null; }

# Debian's chromium drives the example app's browser test.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

# make run [HOST=0.0.0.0] [PORT=9000]
run: run-venv node
	$(BIN)/uvicorn example_app.main:app --host $(HOST) --port $(PORT) --ws $(UVICORN_WS)

typecheck: venv
	$(BIN)/mypy --strict fastapi_realtime

test: venv node chromium redis nginx typecheck
	$(BIN)/python -m pytest -q

# The suite on the lowest dependency versions pyproject.toml allows (slow; not part of `make test`,
# whose tests/packaging serves the README's quick start on them).
test-floors: venv node chromium
	$(BIN)/python -m tests.packaging.floors $(ARGS)

bench: venv node
	$(BIN)/python -m bench --recovery

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules
