# The README's two commands: `make report` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
PYTEST_ARGS ?=
STAMP := $(VENV)/.setup-done

.PHONY: setup report test lint format smoke figures corpora stages results clean-report clean-cache

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

## make report: regenerate the report on the profile that fits the machine (PROFILE=smoke|cpu|gpu to force one;
## SPOKEN_CONTROL=1 trains stage 1's spoken control on cpu too, 15 more minutes on 2 cores;
## SOFT_PROMPT=1 trains stage 3's soft prompt on cpu too, 5 more minutes)
report: $(STAMP)
	$(PY) -m flamenco_lib report --profile $(PROFILE) $(if $(SPOKEN_CONTROL),--spoken-control) $(if $(SOFT_PROMPT),--soft-prompt)

## make test: the whole test suite (what CI runs)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make lint: ruff (lint and format check) over the library, tests, benchmarks and notebooks' .py
## twins, and every notebook pair in step (what CI runs before the tests)
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m flamenco_lib.notebook check-pairs

## make format: let ruff fix what it can, then bring each .ipynb in step with its edited .py twin
format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .
	$(PY) -m jupytext --sync notebooks/[0-9][0-9]_*.py

## make smoke: the fast unit tests only (no model download, no notebooks)
smoke: $(STAMP)
	$(PY) -m pytest -q -m "not model and not notebook" $(PYTEST_ARGS)

## make corpora: the offline corpora under data/corpora (resumable; about 15 min on 2 cores)
corpora: $(STAMP)
	$(PY) -m flamenco_lib data speech --out data/corpora/speech
	$(PY) -m flamenco_lib data speech --source drascula --out data/corpora/speech-drascula
	$(PY) -m flamenco_lib data synth --out data/corpora/cante
	$(PY) -m flamenco_lib data synth --out data/corpora/cante-spoken --style spoken
	$(PY) -m flamenco_lib data synth --out data/corpora/cante-acapella --style a-capella --splits test
	$(PY) -m flamenco_lib data synth --out data/corpora/cante-real --speech data/corpora/speech/manifest.jsonl
	$(PY) -m flamenco_lib data synth --out data/corpora/cante-drascula --speech data/corpora/speech-drascula/manifest.jsonl
	$(PY) -m flamenco_lib data synth --out data/corpora/cante-real-wide --speech data/corpora/speech/manifest.jsonl --splits train --formant-min 0.8 --formant-max 1.25
	$(PY) -m flamenco_lib data synth --out data/corpora/cante-drascula-wide --speech data/corpora/speech-drascula/manifest.jsonl --splits train --formant-min 0.8 --formant-max 1.25
	$(PY) -m flamenco_lib data songs --out data/corpora/songs

## make stages: stage 1, its spoken control and stage 2 on the profile that fits (PROFILE=smoke|cpu|gpu)
stages: corpora
	$(PY) -m flamenco_lib train --config configs/stage1.yaml $(if $(filter-out auto,$(PROFILE)),--profile $(PROFILE))
	$(PY) -m flamenco_lib train --config configs/stage1_spoken.yaml $(if $(filter-out auto,$(PROFILE)),--profile $(PROFILE))
	$(PY) -m flamenco_lib train --config configs/stage2.yaml $(if $(filter-out auto,$(PROFILE)),--profile $(PROFILE))

## make results: evaluate every trained model on every test set and print the table
results: $(STAMP)
	$(PY) -m flamenco_lib results --evaluate

figures: $(STAMP)
	$(PY) -m flamenco_lib figures

## make clean-cache: free disk without losing a result (activation caches, the optimiser
## checkpoints of finished stages); `python -m flamenco_lib clean-cache --dry-run` lists them
clean-cache: $(STAMP)
	$(PY) -m flamenco_lib clean-cache

clean-report:
	rm -rf report/figures report/tables report/executed report/index.html
