# Everything a fresh machine needs is installed by these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := tests/interop
COALESCING_WS := fastapi_realtime.uvicorn_ws:CoalescingWebSocketProtocol
# make run serves with the write-coalescing protocol; UVICORN_WS=websockets-sansio turns it off.
UVICORN_WS ?= $(COALESCING_WS)
HOST ?= 127.0.0.1
PORT ?= 8000
PORT2 ?= 8001
REDIS_PORT ?= 6379
REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0

.PHONY: run run-cluster lint test test-floors bench venv run-venv node chromium redis nginx cc typecheck clean

# The C accelerator of the Socket.IO codec (setup.py) is built at install time; without a
# compiler the package installs pure Python, so the targets below install Debian's gcc first.
SPEEDUPS := setup.py fastapi_realtime/socketio/_speedups.c

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# What the tests, the benchmark and the type check need: the package with its dev extra.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml $(SPEEDUPS) | $(BIN)/python cc
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# What the example app needs, and no more: the package with its server extra (uvicorn, websockets),
# its redis extra (redis-py, msgpack: used only when REDIS_URL is set), its speed extra (orjson)
# and the observability extras (Admin UI, metrics, traces).
run-venv: $(VENV)/.installed-run
$(VENV)/.installed-run: pyproject.toml $(SPEEDUPS) | $(BIN)/python cc
	$(BIN)/pip install -q -e '.[server,redis,speed,admin,metrics,tracing]'
	touch $@

# The interop tests' clients; the example app serves socket.io-client's browser bundle from here.
node: $(NODE_DIR)/node_modules/.installed
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm install --no-audit --no-fund --loglevel=error
	touch $@

cc:
	@command -v cc >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev) >/dev/null; }
	@$(PYTHON) -c "import os, sysconfig, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dev) >/dev/null; }

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

# make run-cluster [PORT=8000] [PORT2=8001] [REDIS_URL=redis://...]: the example chat as two
# processes sharing one Redis; a redis-server on REDIS_PORT is started (and stopped with the chat)
# unless one already answers at REDIS_URL. Ctrl-C stops everything.
run-cluster: run-venv node redis
	@trap 'kill $$chat 2>/dev/null; wait $$chat; [ -z "$$redis" ] || kill $$redis; exit 0' INT TERM; \
	chat=; redis=; \
	if ! redis-cli -u '$(REDIS_URL)' ping >/dev/null 2>&1; then \
	  setsid redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --save '' --appendonly no >/dev/null & redis=$$!; \
	  for i in $$(seq 50); do redis-cli -u '$(REDIS_URL)' ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	  redis-cli -u '$(REDIS_URL)' ping >/dev/null 2>&1 || { echo "no Redis at $(REDIS_URL)"; kill $$redis; exit 1; }; \
	fi; \
	for port in $(PORT) $(PORT2); do \
	  REDIS_URL='$(REDIS_URL)' $(BIN)/uvicorn example_app.main:app --host $(HOST) --port $$port --ws $(UVICORN_WS) & \
	  chat="$$chat $$!"; \
	done; \
	echo "the chat on http://$(HOST):$(PORT)/ and http://$(HOST):$(PORT2)/, sharing $(REDIS_URL)"; \
	wait

typecheck: venv
	$(BIN)/mypy --strict fastapi_realtime

lint: venv
	$(BIN)/ruff check .

# The interop, behaviour and example-app tests run a second time on the write-coalescing
# WebSocket protocol (fastapi_realtime.uvicorn_ws), which `make run` serves with, on h11 for
# HTTP (uvicorn reads UVICORN_HTTP; the first pass has httptools, from the dev extra), and with
# the codec's C accelerator off (the first pass has it on; tests/socketio run both ways).
test: venv node chromium redis nginx typecheck lint
	$(BIN)/python -m pytest -q
	UVICORN_WS=$(COALESCING_WS) UVICORN_HTTP=h11 FASTAPI_REALTIME_SPEEDUPS=0 $(BIN)/python -m pytest -q tests/interop tests/behaviour tests/example_app

# The suite on the lowest dependency versions pyproject.toml allows (slow; not part of `make test`,
# whose tests/packaging serves the README's quick start on them).
test-floors: venv node chromium
	$(BIN)/python -m tests.packaging.floors $(ARGS)

# make bench: every scenario on fastapi-realtime (also with recovery, with metrics on, and on the
# coalescing WebSocket protocol), python-socketio, the
# raw ASGI echo and node socket.io (bench/results/latest.json); QUICK=1: a small run, under two
# minutes. ARGS: more `python -m bench` options (e.g. ARGS='--scenarios conns --servers ours,node').
bench: venv node
	$(BIN)/python -m bench $(if $(QUICK),--quick,--recovery --coalescing --metrics) $(ARGS)

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules
