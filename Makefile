# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-sim test docs dashboard bench bench-quick overhead clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first, so that nothing pulls gigabytes of CUDA wheels
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test,bench,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m optuna_adso.pretrain.demo

demo-sim: $(STAMP)
	$(PY) -m optuna_adso.simulated_demo

test: $(STAMP)
	bash scripts/ensure_services.sh
	bash scripts/ensure_browser.sh
	$(PY) -m pytest -q

# The documentation site (MkDocs, warnings are errors; tests/test_docs.py runs the same build).
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

# optuna-dashboard on the demo's storage, with our plots published (http://127.0.0.1:8080/).
dashboard: $(STAMP)
	$(VENV)/bin/adso dashboard --storage sqlite:///adso_demo.db --publish

# The benchmark suite (docs/benchmarks.md, docs/img/): resumable, traces in benchmarks/results/.
bench: $(STAMP)
	$(PY) -m benchmarks run --preset headline --jobs 2

bench-quick: $(STAMP)
	$(PY) -m benchmarks run --quick --jobs 2


overhead: $(STAMP)
	$(PY) -m benchmarks.overhead

clean:
	rm -rf $(VENV) *.egg-info adso_demo.db .adso_cache
