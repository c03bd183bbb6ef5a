# Two commands do all set-up on a fresh CPU-only machine:
#   make test   creates .venv, installs everything (torch 2.13.0 CPU), runs ruff + pytest
#   make demo   creates .venv if needed and runs the main job on examples/molecules.csv
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo clean wordnet

$(STAMP): requirements/cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/cpu.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .

# WordNet 3.0 for METEOR (Debian packages, copied into an NLTK data folder; no downloads).
# If apt is unavailable the METEOR tests skip with a reason instead of failing the suite.
wordnet: venv
	-$(BIN)/python -m llamo_plugin.eval.wordnet_setup

test: venv lint wordnet
	$(BIN)/pytest -q

demo: venv
	$(BIN)/llamo demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
