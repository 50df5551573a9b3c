# Two commands for a newcomer:  `make demo` (install + run the demo cohort)  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CORES ?= all
# PyPI's torch/torchvision pair (see README, "Installing"); ignore site pip settings that would
# pull a CPU-only torch without a matching torchvision.
PIP := env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null $(BIN)/pip

.PHONY: install demo test lint dryrun clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $@

demo: install
	$(BIN)/oncoflow demo --out data/demo
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --report results/demo/report.html
	@cat results/demo/tables/metrics.md
	@echo
	@echo "Open first: results/demo/report.html in a web browser (one self-contained file, no server;"
	@echo "  e.g. xdg-open results/demo/report.html, or copy it to your laptop). It opens on the headline"
	@echo "  table and figures; the left menu has every table, figure, the methods, checklists and QC."

dryrun: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake -n --cores $(CORES)

# One pytest-xdist worker per core, 2 to 4 (tests/conftest.py groups the tests that share one
# finished run; each end-to-end test runs Snakemake on 2 cores; the largest process of the study
# runs peaked at 3.8 GB).
TEST_WORKERS ?= $(shell nproc 2>/dev/null | awk '{print ($$1 < 2 ? 2 : ($$1 > 4 ? 4 : $$1))}')
test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

# Style and the Snakemake catalog's checks (about 1 min): rule files formatted, Python linted,
# `snakemake --lint` clean on the default config and every study config (.ci/lint_workflow.py).
lint: install
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check src tests workflow/scripts benchmarks .ci
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python .ci/lint_workflow.py

clean-demo:
	rm -rf data/demo results/demo
