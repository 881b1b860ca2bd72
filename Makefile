# Two entry points: `make demo` and `make test`. Both create .venv when it is missing and
# install the CPU build of torch first (an unpinned torch would pull a multi-GB CUDA build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
# pip install builds the engine's C kernels (setup.py): install again when they change.
BUILT_AT_INSTALL := pyproject.toml setup.py src/selfattention/engine/variants.py \
	$(wildcard src/selfattention/engine/kernels/*.c src/selfattention/engine/kernels/*.h)

.PHONY: demo test lint typecheck unit clean notebook

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)

# The demo installs the web extra too, so that `selfattention serve` works after `make demo`.
$(VENV)/.installed: $(BIN)/python $(BUILT_AT_INSTALL)
	$(BIN)/pip install --quiet -e '.[web]'
	touch $@

# The browser test drives Debian's chromium (Playwright's own download does not work everywhere):
# install it when missing and possible, and never fail here; without it that test skips.
$(VENV)/.installed-dev: $(BIN)/python $(BUILT_AT_INSTALL)
	$(BIN)/pip install --quiet -e '.[test,dev,web,hf,ct2,tensorboard]'
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq chromium) \
			|| echo "could not install chromium: the browser test will be skipped"; \
	fi
	touch $@ $(VENV)/.installed

## demo: install, translate a few sentences with the bundled en-fr model, explain one head
demo: $(VENV)/.installed
	$(BIN)/selfattention translate "I am good." "A dog ate the food because it was hungry." \
		"Two young men are playing soccer in a park." "I love apple juice."
	$(BIN)/selfattention explain "I am good."

## test: install with test extras, then lint, type-check and run the whole suite
test: $(VENV)/.installed-dev lint typecheck unit

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache src/selfattention/engine/kernels/*.so

## notebook: docs/walkthrough.ipynb from docs/walkthrough.py (the .py is the source of truth)
notebook: $(VENV)/.installed-dev
	$(BIN)/jupytext --to ipynb docs/walkthrough.py
