# Two entry points for a fresh machine (Python >= 3.11 and pip only):
#   make run   - create .venv, install siliconomics (with the web app), run the main job (chip comparison)
#   make test  - create .venv, install dev tools, run ruff, mypy and pytest
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared

.PHONY: run test install install-dev lint typecheck pytest validate docs calibrate bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[web]'

install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'

run: install
	$(BIN)/siliconomics compare --model llama-3.1-70b --input 1500 --output 300 --ttft 2s --tpot 60ms

lint: install-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest

test: lint typecheck pytest

validate: install
	$(BIN)/siliconomics validate $(SHARED)/validation/measured.csv

docs: install-dev
	$(BIN)/python scripts/gen_validation_doc.py $(SHARED)/validation/measured.csv docs/data/cross_validation.json docs/VALIDATION.md

# The packaged calibration: the shared file plus the packaged corpus (deduplicated), grouped
# 10-fold cross-validation by source, fits on at most 3 rows per (source, chip, model) cell,
# 500 requests per simulator trial of a server row, folds in 2 processes (docs/CALIBRATION.md).
CALIBRATE_OPTS ?= --corpus --all-families --folds 10 --fit-cap 3 --server-requests 500 --jobs 2
calibrate: install-dev
	$(BIN)/python scripts/calibrate_nvidia.py --shared $(SHARED) --write
	rm -rf build/calibration
	$(BIN)/siliconomics calibrate $(SHARED)/validation/measured.csv $(CALIBRATE_OPTS) --out build/calibration
	mv build/calibration/bands.toml src/siliconomics/catalog/data/bands.toml
	mkdir -p docs/data
	mv build/calibration/cross_validation.json docs/data/cross_validation.json
	rm -rf src/siliconomics/catalog/data/efficiency/stacks
	mkdir -p src/siliconomics/catalog/data/efficiency/stacks
	cp build/calibration/stacks/*.toml src/siliconomics/catalog/data/efficiency/stacks/ 2>/dev/null || true
	cp build/calibration/*.toml src/siliconomics/catalog/data/efficiency/

bench: install-dev
	$(BIN)/python benchmarks/bench_estimate.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_plan.py
	$(BIN)/python benchmarks/bench_callers.py
	$(BIN)/python benchmarks/bench_serving.py --shared $(SHARED)
	$(BIN)/python benchmarks/bench_speculative.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
