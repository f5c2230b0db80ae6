# One-command entry points. `make book` renders the book on the embedded synthetic cohort;
# `make test` runs the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PARAMS ?= params/smoke.yaml
BIN    := $(VENV)/bin
# CPU build of torch; set TORCH_SPEC= (empty) to keep a torch you already have.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup book test bench cohort run clean kernel lab check-book test-slurm gpu-quick

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv
	if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install -q "$(TORCH_SPEC)"; fi
	# uv resolves and installs the rest in seconds (pip takes minutes); pip if uv is unavailable.
	# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set nothing
	# else does, so every kernel would recompile monai & co. on import (about 5 s each)
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e ".[all]" || $(BIN)/python -m pip install -q -e ".[all]"
	touch $@

cohort: setup
	$(BIN)/cmrlib cohort --params $(PARAMS)

run: setup
	$(BIN)/cmrlib run --params $(PARAMS)

book: setup
	$(BIN)/cmrlib book --params $(PARAMS)

test: setup
	$(BIN)/python -m pytest -q

# A Jupyter kernel for this environment ("Python (cmrlib)"), then JupyterLab on the chapters: change a chapter's
# PARAMS cell (e.g. to "params/course.yaml") and run it; finished experiments come from the same run store.
kernel: setup
	$(BIN)/python -m ipykernel install --sys-prefix --name cmrlib --display-name "Python (cmrlib)"

lab: kernel
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e ".[lab]" || $(BIN)/python -m pip install -q -e ".[lab]"
	$(BIN)/jupyter lab --notebook-dir=. notebooks/01_cohort_and_curation.ipynb

# A first look on a new GPU machine: chapters 01, 02 and 07 with the gpu network on a small cohort
gpu-quick: setup
	$(BIN)/cmrlib book --params params/gpu_quick.yaml --only 01 02 07

# A real single-node Slurm on localhost (needs root): the experiments as Slurm jobs, checked against local ones
test-slurm: setup
	bash scripts/slurm-test.sh

# Render the smoke book and open every page in headless Chromium (Debian's chromium + chromium-driver)
check-book: setup
	$(BIN)/python scripts/check_book.py --params $(PARAMS)

bench: setup
	$(BIN)/python benchmarks/eval_speed.py
	$(BIN)/python benchmarks/cohort_speed.py
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf _build runs
