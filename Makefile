# `make demo` runs examples/quickstart.yaml on the embedded model; `make test` runs the suite on
# both host stacks (AUTOMATIC1111 v1.10.1-like and Forge-like pins). Each sets up what it needs.
PYTHON ?= python3
VENVS := .venvs
PYTEST_ARGS ?= -q

.PHONY: demo test test-a1111 test-forge lint bench clean

$(VENVS)/%/.installed: requirements/%.txt requirements/common.txt requirements/embedded.txt
	$(PYTHON) -m venv $(VENVS)/$*
	$(VENVS)/$*/bin/python -m pip install -q --disable-pip-version-check -r requirements/$*.txt
	touch $@

demo: $(VENVS)/embedded/.installed
	$(VENVS)/embedded/bin/python -m sd_sweep run examples/quickstart.yaml --out sweep-runs

test: test-a1111 test-forge

test-a1111: $(VENVS)/a1111/.installed
	$(VENVS)/a1111/bin/python -m pytest $(PYTEST_ARGS)

test-forge: $(VENVS)/forge/.installed
	$(VENVS)/forge/bin/python -m pytest $(PYTEST_ARGS)

lint: $(VENVS)/forge/.installed
	$(VENVS)/forge/bin/ruff check .
	$(VENVS)/forge/bin/ruff format --check .
	$(VENVS)/forge/bin/lint-imports

bench: $(VENVS)/embedded/.installed
	$(VENVS)/embedded/bin/python benchmarks/bench_sweep.py

clean:
	rm -rf $(VENVS) sweep-runs
