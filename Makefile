# From a fresh clone: `make serve` starts the server with the bundled models on
# 127.0.0.1:8000, `make test` runs the whole suite. Both create .venv and install the
# project (editable) pinned by constraints.txt on first use: `make serve` the runtime alone
# (plus EXTRAS), `make test`, `make lint` and `make bench` the dev extra (everything).
#
# Variables (override on the command line, e.g. `make serve PORT=9000`):
#   PYTHON       interpreter that creates the venv (3.10-3.12)      default python3
#   VENV         venv folder                                        default .venv
#   HOST, PORT   where `make serve` listens                         default 127.0.0.1, 8000
#   MODELS       checkpoints `make serve` loads (folder or file)    default models
#   EXTRAS       extras `make serve` adds to the runtime, e.g. ray  default none
#   PYTEST_ARGS  extra pytest arguments for `make test`
#   BENCH_ARGS   extra arguments for `make bench` (`wavenet bench`)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One stamp per set of extras, written after a successful install of that set
# ($(VENV)/.install-runtime, .install-dev, .install-ray...); pip runs again only when
# pyproject.toml or constraints.txt is newer than the stamp, or the stamp is missing. So
# `make test` after `make serve` adds the dev extra to the same venv, and a dev install also
# stands for the runtime (it includes it), so `make serve` after `make test` installs nothing.
EXTRAS ?=
comma := ,
RUNTIME_STAMP := $(VENV)/.install-$(if $(EXTRAS),$(subst $(comma),+,$(EXTRAS)),runtime)
DEV_STAMP := $(VENV)/.install-dev

HOST ?= 127.0.0.1
PORT ?= 8000
MODELS ?= models
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv install install-runtime serve test lint bench constraints gpu-wheels

help:
	@echo "make serve        install if needed, then serve $(MODELS)/ on http://$(HOST):$(PORT)"
	@echo "make test         install if needed, then run the whole test suite"
	@echo "make lint         ruff on the code, hadolint on the Dockerfile"
	@echo "make bench        run the speed benchmarks (wavenet bench)"
	@echo "make install      create $(VENV) and install '.[dev]' with constraints.txt"
	@echo "make install-runtime  the same, the runtime alone ('.', what 'make serve' needs)"
	@echo "make constraints  regenerate constraints.txt from $(VENV) (after adding a dependency)"
	@echo "make gpu-wheels   download the wheels scripts/gpu-check carries (after a pin changes)"

venv install: $(DEV_STAMP)
install-runtime: $(RUNTIME_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; \
	  exit 1; }

# $* is "runtime" (the project alone) or extras joined by "+" (EXTRAS=ray,gpu -> ray+gpu).
$(VENV)/.install-%: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -e '.$(if $(filter runtime,$*),,[$(subst +,$(comma),$*)])' -c constraints.txt
	@touch $@ $(if $(filter dev,$*),$(VENV)/.install-runtime)

serve: $(RUNTIME_STAMP)
	$(BIN)/wavenet serve --host $(HOST) --port $(PORT) $(if $(MODELS),--model $(MODELS))

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile

bench: $(DEV_STAMP)
	$(BIN)/wavenet bench $(BENCH_ARGS)

# Pins everything installed in the venv except the project itself and pip (setuptools too:
# torch requires it at run time). Local version labels
# (torch 2.13.0+cpu) are dropped so the same file serves the CPU and CUDA wheels.
# It first installs the dev extra (every extra) if pyproject.toml changed, so a dependency
# just added there is installed, then pinned.
constraints: $(DEV_STAMP)
	@{ echo "# Pins for everything 'make install' puts in $(VENV) (runtime + dev extra)."; \
	   echo "# Regenerate after changing dependencies in pyproject.toml: run 'make constraints'"; \
	   echo "# (it installs them into $(VENV) first). Keep torch==2.13.0: an unpinned torch"; \
	   echo "# downloads GBs."; \
	   $(BIN)/python -m pip freeze --all --exclude pip --exclude-editable --exclude wavenet-server \
	     | sed -E 's/^([A-Za-z0-9._-]+==[^+]+)\+.*$$/\1/'; \
	 } > constraints.txt.tmp
	@grep -q '^torch==2\.13\.0$$' constraints.txt.tmp || { \
	  echo "error: $(VENV) does not hold torch 2.13.0; constraints.txt left unchanged" >&2; \
	  rm -f constraints.txt.tmp; exit 1; }
	@mv constraints.txt.tmp constraints.txt
	@for stamp in $(VENV)/.install-*; do if [ -f "$$stamp" ]; then touch "$$stamp"; fi; done
	@echo "wrote constraints.txt ($$(grep -vc '^#' constraints.txt) pins)"

# The safetensors and tqdm wheels that scripts/gpu-check and scripts/gpu-train carry to the
# GPU machine (CPython 3.12, x86_64 Linux, no network; scripts/carried_wheels.py): the
# versions constraints.txt pins. Run it after `make constraints` changes either pin.
GPU_WHEELS := scripts/wheels
GPU_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
                 manylinux2014_x86_64 manylinux1_x86_64
gpu-wheels: | $(BIN)/python
	rm -f $(GPU_WHEELS)/*.whl
	$(BIN)/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp $(addprefix --platform ,$(GPU_PLATFORMS)) -d $(GPU_WHEELS) \
	  $$(grep -E '^(safetensors|tqdm)==' constraints.txt)
