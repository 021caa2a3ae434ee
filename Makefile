# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/python -m tune_vqvae.search --smoke --storage-path runs/search
	$(BIN)/python -m analysis "$$(ls -td runs/search/smoke-* | head -1)"

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check tune_vqvae analysis tests

clean:
	rm -rf $(VENV) runs .pytest_cache
