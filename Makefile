# Set-up is idempotent: the venv is created once, and the install step
# reruns only when pyproject.toml changes (stamp file).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast repro check methods preset clean-venv

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

# one pytest worker per core (pytest-xdist): the end-to-end tests run side by side (each
# worker builds its own shared tiny run: xdist 3.8's loadgroup, which would keep them on one
# worker, has no effect under pytest 9.2). --durations: the slowest tests, for whoever
# keeps make test within its budget.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --durations=12

# the unit tests only: everything but the end-to-end files (marked slow) that run the real dvc repro
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow"

# params.yaml as every stage will check it (make repro runs the same check first).
check: $(STAMP)
	$(BIN)/python stages/check_params.py

# params.yaml's baselines and deal_methods, written from its methods (the method table: deal/methods.py)
methods: $(STAMP)
	$(BIN)/python stages/methods.py

# The stage host keeps torch imported across the stages (see stages/host.py);
# it checks params.yaml before DVC runs.
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python stages/host.py dvc repro

# make preset PRESET=camvid DATA=/data/CamVid [SET="dataset.test_split=val ..."]
# (presets/*.yaml over the default params, then each SET key=value)
PRESETS := $(basename $(notdir $(wildcard presets/*.yaml)))
ifneq ($(filter preset,$(MAKECMDGOALS)),)
ifeq ($(filter $(PRESET),$(PRESETS)),)
$(error PRESET='$(PRESET)': give one of $(PRESETS), e.g. make preset PRESET=camvid DATA=/data/CamVid)
endif
endif
preset: $(STAMP)
	$(BIN)/python stages/preset.py presets/$(PRESET).yaml $(if $(DATA),--data $(DATA)) $(foreach kv,$(SET),--set $(kv))

clean-venv:
	rm -rf $(VENV)
