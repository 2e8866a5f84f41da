# facezoo: `make demo` installs and trains the demo model on the embedded data; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The virtual environment is rebuilt when the dependency spec (pyproject.toml) changes.
SPEC := $(shell sha1sum pyproject.toml | cut -c1-12)
STAMP := $(VENV)/.facezoo-deps-$(SPEC)
PYTEST_ARGS ?=

.PHONY: install test test-full demo lint format data checkpoints leaderboard clean help

help:
	@echo "make install    create $(VENV) and install facezoo with its dev tools"
	@echo "make demo       install, then train zoo/demo/transae.yaml on the embedded REACT world"
	@echo "make test       the default test suite (not slow)"
	@echo "make test-full  every test, slow ones included"
	@echo "make lint       ruff"
	@echo "make data       write the embedded REACT world to data/react (make-data react)"
	@echo "make checkpoints  train the demo configs on the embedded world and ship their weights"
	@echo "make leaderboard re-run every benchmark suite, then render docs/leaderboard.md"

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	@rm -f $(VENV)/.facezoo-deps-*
	@touch $(STAMP)

# The editable install is re-pointed at this checkout every time (cheap), so a cached
# environment can serve several clones.
install: $(STAMP)
	@$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .

test: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-full: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/facezoo fit --config zoo/demo/transae.yaml

data: install
	$(BIN)/facezoo make-data react --out data/react

checkpoints: install
	$(BIN)/python -m checkpoints.build

leaderboard: install
	$(BIN)/facezoo benchmark --suite react
	$(BIN)/facezoo benchmark --suite smile
	$(BIN)/facezoo benchmark --suite interview
	$(BIN)/facezoo benchmark --leaderboard

lint: install
	$(BIN)/ruff check zoo datamodules callbacks checkpoints tests benchmarks

format: install
	$(BIN)/ruff format zoo datamodules callbacks checkpoints tests benchmarks

clean:
	rm -rf lightning_logs .pytest_cache build *.egg-info
