# tdlib: `make reproduce` regenerates every figure and table; `make test` runs the tests.
# The virtual environment is created once and re-installed only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PRESET ?= cpu

.DEFAULT_GOAL := help
.PHONY: help install test smoke reproduce evaluate bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
		| grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import tdlib, torch, timm, skia, lark, papermill"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install tdlib with its dev extras

test: $(STAMP)  ## run the test suite (notebooks included, smoke preset)
	$(BIN)/python -m pytest -q

smoke: $(STAMP)  ## execute every notebook with the smoke preset (outputs to a temp folder)
	$(BIN)/python -m tdlib.notebook_runner --preset smoke --output-dir $${TMPDIR:-/tmp}/tdlib-smoke

reproduce: $(STAMP)  ## regenerate every figure and table (cpu preset, shipped checkpoints)
	$(BIN)/python -m tdlib.notebook_runner --preset $(PRESET) --output-dir results/notebooks

# Figures 4, 5 and 7's evaluations, resumable: about 4 CPU-hours at budget 1000 for Figure 4
# (csg2d: 3 seeds x 5 methods plus two scorings; csg2d_hard, tinysvg, csg2d_sketch: seed 0) and
# about 4.5 more for Figure 5 (rainbow: 7 arms' rollouts and 4 arms' TD search, seed 0).
# PRESET=smoke: 4 problems per run at budget 20 into a scratch folder, a couple of minutes.
EVAL_QUEUE ?= csg2d/0 csg2d/1,2/ar,td-rollout,td-search-value,repl,random-search-value \
	csg2d_hard/0 tinysvg/0 csg2d_sketch/0 rainbow/0
evaluate: $(STAMP)  ## rerun the search evaluations behind Figures 4, 5, 7 (hours; PRESET=smoke: minutes)
ifeq ($(PRESET),smoke)
	$(BIN)/python tools/run_evaluations.py --queue $(EVAL_QUEUE) --budget 20 --limit 4 \
		--output-dir $${TMPDIR:-/tmp}/tdlib-eval-smoke
else
	$(BIN)/python tools/run_evaluations.py --queue $(EVAL_QUEUE) --budget 1000
endif

bench: $(STAMP)  ## run the speed benchmarks and write results/benchmarks.md
	$(BIN)/python benchmarks/run.py --output results/benchmarks.md

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .hypothesis
