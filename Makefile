# Two commands for a newcomer:  `make demo` (install + run the demo cohort)  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CORES ?= all
# PyPI's torch/torchvision pair (see README, "Installing"); ignore site pip settings that would
# pull a CPU-only torch without a matching torchvision.
PIP := env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null $(BIN)/pip

.PHONY: install demo test dryrun clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/oncoflow demo --out data/demo
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES)
	@cat results/demo/tables/metrics.md

dryrun: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake -n --cores $(CORES)

test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest

clean-demo:
	rm -rf data/demo results/demo
