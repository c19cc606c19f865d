# The README's two commands: `make demo` and `make test`. Both set everything up on first use and are
# idempotent: the virtual environment is rebuilt only when pyproject.toml or requirements.lock change.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

.PHONY: demo test lint lock setup clean-lake java browser mosquitto

demo: setup
	$(VENV)/bin/lakehouse demo $(ARGS)

# The linters run first: a style guide that no check enforces drifts.
test: setup browser mosquitto lint
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup --durations=15 $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd dbt_project && ../$(VENV)/bin/sqlfluff lint --processes 2 models macros
	@# what the macros write: dbt compiles every model into a scratch lake, SQLFluff lints the result
	@scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && mkdir $$scratch/lake && head -c 24 /dev/urandom | base64 > $$scratch/salt && \
	cd dbt_project && LAKEHOUSE_LAKE=$$scratch/lake LAKEHOUSE_PII_SALT_FILE=$$scratch/salt \
	  ../$(VENV)/bin/dbt --quiet compile --target-path $$scratch/target --log-path $$scratch/logs && \
	../$(VENV)/bin/sqlfluff lint --processes 2 --config lint/compiled.sqlfluff \
	  $$(find $$scratch/target/compiled/lakehouse/models -name '*.sql' -not -path '*.yml/*' | sort)

setup: java $(STAMP)

# Spark 4 needs Java 17 or newer. As root on Debian we install it; elsewhere we say how.
java:
	@ver=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	if [ -z "$$ver" ] || [ "$$ver" -lt 17 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Java 17+ not found (found: '$${ver:-none}'); installing openjdk-17-jre-headless with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	  else \
	    echo "error: Spark 4 needs Java 17 or newer (found: '$${ver:-none}')."; \
	    echo "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless"; \
	    echo "  macOS:         brew install openjdk@17"; \
	    exit 1; \
	  fi; \
	fi

# The dashboard's browser test drives Debian's headless Chromium (tools that download their own browser
# cannot work offline). As root on Debian we install it; elsewhere we say how.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver with apt-get (for the dashboard's browser test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "error: the browser test needs /usr/bin/chromium and /usr/bin/chromedriver."; \
	    echo "  Debian/Ubuntu: sudo apt-get install -y chromium chromium-driver"; \
	    exit 1; \
	  fi; \
	fi

# The MQTT bridge's tests start Debian's Mosquitto broker on a loopback port (with their own config and
# data folder; the system service is not used). As root on Debian we install it; elsewhere we say how.
mosquitto:
	@if [ ! -x /usr/sbin/mosquitto ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing mosquitto with apt-get (for the MQTT bridge's tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	  else \
	    echo "error: the MQTT bridge's tests need /usr/sbin/mosquitto."; \
	    echo "  Debian/Ubuntu: sudo apt-get install -y mosquitto"; \
	    echo "  macOS:         brew install mosquitto"; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (e.g. apt-get install python3.11-venv)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(VENV)/bin/python requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --no-deps --config-settings editable_mode=compat -e .
	touch $(STAMP)

# Re-pin every dependency after editing pyproject.toml.
lock:
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean-lake:
	rm -rf lake
