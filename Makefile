# OneMap — every target does its own set-up first (idempotent; a second run takes seconds).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
APT_PACKAGES := postgresql-15 postgresql-15-postgis-3 postgresql-contrib gdal-bin chromium fonts-noto-cjk
STAMP := $(VENV)/.onemap-installed
NPM_STAMP := node_modules/.onemap-installed
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

.PHONY: setup system-packages python-env web-assets run stop test test-fast lint bench clean help

help:
	@echo "make run    set up, start PostGIS, migrate, load the demo city, serve on http://$(HOST):$(PORT)"
	@echo "make test   set up, then the whole test suite against a real PostGIS"
	@echo "make test-fast  the unit tests alone (no database, no browser)"
	@echo "make lint   ruff + mypy"
	@echo "make bench  side-by-side benchmarks"
	@echo "make stop   stop the project's PostGIS cluster"

setup: system-packages python-env web-assets

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != "0" ]; then \
	    echo "OneMap needs these Debian packages:$$missing"; \
	    echo "Run 'make setup' as root, or: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	  echo "Installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

python-env: $(STAMP)

# Browser libraries of /screen (MapLibre, ECharts, Leaflet for folium) from the npm registry,
# re-installed only when package-lock.json changes; then the map's glyph PBFs generated
# from Debian's Noto Sans CJK (the script skips work already done).
web-assets: $(NPM_STAMP)
	@node geo_service/web/tools/build-glyphs.cjs $(CJK_FONT) "Noto Sans CJK SC Regular" build/glyphs --skip-ideographs

$(NPM_STAMP): package-lock.json
	@command -v npm >/dev/null || { \
	  echo "Installing Debian packages: nodejs npm"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	@echo "Installing the web page's npm packages ..."
	@npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $(NPM_STAMP)

# Re-installs only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "OneMap needs Python >= 3.11")'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "Installing OneMap and its Python dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	@$(BIN)/python -m pip install -q -e '.[test,dev]' 2>&1 | { grep -v -e "Location 'file" -e BuildBackendWarning || true; }
	@touch $(STAMP)

run: setup
	$(BIN)/onemap db start
	$(BIN)/onemap db migrate
	$(BIN)/onemap demo --if-empty
	$(BIN)/onemap serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

stop: setup
	$(BIN)/onemap db stop

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit tests only: no PostGIS, no browser, no server.
test-fast: python-env $(NPM_STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check geo_service layers emergency tiles risk_models tests bench
	$(BIN)/ruff format --check geo_service layers emergency tiles risk_models tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
