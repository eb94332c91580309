# The README's two commands: `make report` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
PYTEST_ARGS ?=
STAMP := $(VENV)/.setup-done

.PHONY: setup report test smoke figures clean-report

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

## make report: regenerate the report on the profile that fits the machine (PROFILE=smoke|cpu|gpu to force one)
report: $(STAMP)
	$(PY) -m flamenco_lib report --profile $(PROFILE)

## make test: the whole test suite (what CI runs)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make smoke: the fast unit tests only (no model download, no notebooks)
smoke: $(STAMP)
	$(PY) -m pytest -q -m "not model and not notebook" $(PYTEST_ARGS)

figures: $(STAMP)
	$(PY) -m flamenco_lib figures

clean-report:
	rm -rf report/figures report/tables report/executed report/index.html
