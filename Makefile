# careloop: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.careloop-installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The suite runs on two pytest-xdist workers; each test module stays on one
# worker. Serially: make test PYTEST_ARGS="-p no:xdist"
PYTEST_ARGS ?= -n 2 --dist loadscope

.PHONY: demo test lint serve install clean bench docs

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/careloop demo --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

serve: $(STAMP)
	$(BIN)/careloop serve --host $(HOST) --port $(PORT)

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

docs: $(STAMP)
	$(BIN)/python scripts/regenerate_docs.py
	$(BIN)/python scripts/import_graph.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
