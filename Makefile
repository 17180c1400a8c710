# Everything a fresh machine needs is installed by these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := tests/interop
UVICORN_WS ?= websockets-sansio

.PHONY: run test bench venv node chromium typecheck clean

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

node: $(NODE_DIR)/node_modules/.installed
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm install --no-audit --no-fund --loglevel=error
	touch $@

# Debian's chromium drives the example app's browser test.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

run: venv node
	$(BIN)/uvicorn example_app.main:app --host 127.0.0.1 --port 8000 --ws $(UVICORN_WS)

typecheck: venv
	$(BIN)/mypy --strict fastapi_realtime

test: venv node chromium typecheck
	$(BIN)/python -m pytest -q

bench: venv node
	$(BIN)/python -m bench --recovery

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules
