# The two commands a new user needs on a fresh machine:
#   make demo   set up a virtualenv and record a demo meeting into ./recordings
#   make test   set up everything the tests need and run them
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint setup system-deps clean

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

# Debian packages the browser tests need (headless Chromium). Installed only
# when missing; needs root (CI runs as root).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: setup system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
