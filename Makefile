# The two commands a new user needs on a fresh machine:
#   make demo   set up a virtualenv and record a demo meeting into ./recordings
#   make test   set up everything the tests need and run them
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck install-check ci setup system-deps contrib-deps clean

$(BIN)/recfw: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# constraints.txt pins a resolution known to work: moto[server] next to
	# s3fs/aiobotocore otherwise sends pip's resolver into long backtracking.
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(BIN)/recfw

demo: setup
	$(BIN)/recfw demo

# Debian packages the tests need: headless Chromium (browser tests), the
# PostgreSQL server (the control plane's tests start one in a temp folder),
# redis-server (the recording queue's tests start one on loopback), Janus (the
# Janus room tests start one on loopback, with a getifaddrs shim built by cc:
# see recfw.testing.janus) and iproute2 (`ip`: the network namespaces of
# tests/netns, root only).
# Installed only when missing; needs root (CI runs as root).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the database tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || { \
	  echo "installing Debian's redis-server for the recording queue tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || { \
	  echo "installing Debian's iproute2 for the several-machines tests (network namespaces)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; }
	@command -v janus >/dev/null 2>&1 || { \
	  echo "installing Debian's janus for the Janus room tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus >/dev/null; }
	@command -v cc >/dev/null 2>&1 && test -f /usr/include/ifaddrs.h || { \
	  echo "installing a C compiler: the test Janus is confined to loopback by a small shim"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; }

# What the contrib/ plugins' tests need: their Python dependencies (pinned in
# constraints.txt) and the Azurite emulator from the npm registry, in a cache dir.
AZURITE_DIR ?= $(HOME)/.cache/recfw/azurite
contrib-deps: setup
	$(BIN)/pip install --quiet -c constraints.txt -r contrib/requirements.txt
	@if [ -x "$(AZURITE_DIR)/node_modules/.bin/azurite-blob" ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "installing the Azurite emulator (npm) into $(AZURITE_DIR)"; \
	  npm install --no-audit --no-fund --silent --prefix "$(AZURITE_DIR)" azurite@3.35.0; \
	else echo "npm is missing: the Azure sink tests will be skipped"; fi

test: setup system-deps contrib-deps
	$(BIN)/ruff check .
	MYPY=$(abspath $(BIN))/mypy .ci/typecheck
	$(BIN)/python -m pytest -q

# mypy on core/ and plugins/ (settings in pyproject's [tool.mypy]).
typecheck: setup
	MYPY=$(abspath $(BIN))/mypy .ci/typecheck

# A fresh venv installs `-e .[test]` WITHOUT constraints.txt, as a plugin author
# would, within INSTALL_CHECK_TIMEOUT seconds; prints how long it took. CI runs it.
# Measured on a loaded 2-core box: 969-1022 s, most of it downloading ~300 MB of
# wheels (resolving alone: 254-304 s); without pyproject's floors on aiobotocore,
# botocore and boto3, resolving alone had not finished after 1500 s.
INSTALL_CHECK_TIMEOUT ?= 1500
install-check:
	PYTHON=$(PYTHON) .ci/install-check $(INSTALL_CHECK_TIMEOUT)

# What CI runs (.ci/run).
ci: test install-check

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
