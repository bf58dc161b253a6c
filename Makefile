# Set-up is idempotent: the venv is created once, and the install step
# reruns only when pyproject.toml or requirements.lock changes (stamp file).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv (put into the venv by pip, pinned) installs the same packages as pip several times
# faster (docs/performance.md); INSTALLER=pip is the plain-pip path, and the uv path falls
# back to it when uv cannot be had. Both install -c requirements.lock: the same venv.
INSTALLER ?= uv
UV_VERSION := 0.13.9
PIP := $(BIN)/pip install --disable-pip-version-check -q
# uv does not read pip's configuration: pass on the local wheel stores and package indexes pip is
# pointed at (find-links, index-url, extra-index-url: $$PIP_FIND_LINKS ... or a pip.conf), where torch's
# wheel lies; without the indexes uv took torch 2.14.1 and its CUDA wheels from PyPI (a 3 GB download
# on a machine whose uv cache lacks them). unsafe-best-match: as pip, take a package from any index
# that holds the locked version, not only from the first index that knows its name.
PIP_SOURCE = $$( { echo "$$$(2)"; $(BIN)/pip config list 2>/dev/null | sed -n "s/^[^=]*[.]$(1)='\(.*\)'$$/\1/p"; } \
  | tr ' ' '\n' | sort -u | sed -n 's/^./--$(1) &/p')
UV_SOURCES = $(call PIP_SOURCE,find-links,PIP_FIND_LINKS) $(call PIP_SOURCE,index-url,PIP_INDEX_URL) \
  $(call PIP_SOURCE,extra-index-url,PIP_EXTRA_INDEX_URL) --index-strategy unsafe-best-match

.PHONY: venv test test-fast repro check methods preset lock clean-venv stage status metrics plots compare

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
ifeq ($(INSTALLER),uv)
	{ $(PIP) uv==$(UV_VERSION) && $(BIN)/uv pip install --python $(BIN)/python --compile-bytecode $(UV_SOURCES) -q -c requirements.lock -e '.[test]'; } \
	  || { echo "make: uv failed; installing with pip" >&2; $(PIP) -c requirements.lock -e '.[test]'; }
else
	$(PIP) -c requirements.lock -e '.[test]'
endif
	touch $(STAMP)

# requirements.lock again from pyproject.toml's pins: what pip resolves in a fresh venv (without this
# project's own line, nor the comment pip freeze writes above it when the clone has no git remote)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --disable-pip-version-check -q -e '.[test]'
	{ head -3 requirements.lock; .lock-venv/bin/pip freeze | grep -v -e '^-e' -e '^#'; } > .requirements.lock.tmp
	mv .requirements.lock.tmp requirements.lock && rm -rf .lock-venv

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
	$(BIN)/python tools/check_params.py

# params.yaml's baselines and deal_methods, written from its methods (the method table: deal/methods.py)
methods: $(STAMP)
	$(BIN)/python tools/methods.py

# The stage host keeps torch imported across the stages (see tools/host.py);
# it checks params.yaml before DVC runs.
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python tools/host.py dvc repro

# make preset PRESET=camvid DATA=/data/CamVid [SET="dataset.test_split=val ..."]
# (presets/*.yaml over the default params, then each SET key=value)
PRESETS := $(basename $(notdir $(wildcard presets/*.yaml)))
ifneq ($(filter preset,$(MAKECMDGOALS)),)
ifeq ($(filter $(PRESET),$(PRESETS)),)
$(error PRESET='$(PRESET)': give one of $(PRESETS), e.g. make preset PRESET=camvid DATA=/data/CamVid)
endif
endif
preset: $(STAMP)
	$(BIN)/python tools/preset.py presets/$(PRESET).yaml $(if $(DATA),--data $(DATA)) $(foreach kv,$(SET),--set $(kv))

# One stage (and what it needs) by the name `dvc repro` prints: make stage NAME=train@0-deal_de-r1
# (DVC itself wants the stage's file first: tools/target.py writes it).
stage: $(STAMP)
	@test -n "$(NAME)" || { echo "make: give NAME, e.g. make stage NAME=train@0-deal_de-r1" >&2; exit 2; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python tools/host.py dvc repro $$($(BIN)/python tools/target.py $(NAME))

# What would run (make status, or make status NAME=evaluate@0-deal_de-r1), the comparison
# numbers per method (make metrics), and the curves and last round's figures (make plots:
# dvc_plots/index.html).
status: $(STAMP)
	$(BIN)/dvc status $(if $(NAME),$$($(BIN)/python tools/target.py $(NAME)))

metrics: $(STAMP)
	$(BIN)/dvc metrics show

plots: $(STAMP)
	$(BIN)/dvc plots show

# The experiments side by side: the metrics and params that differ, without the columns of
# the data deps whose hashes differ (the pools, runs, figures and evaluations of every
# rerun stage: 33 columns, about 3000 characters wide, for two experiments that change DE's k).
# Two experiments alone: dvc exp diff A B.
compare: $(STAMP)
	$(BIN)/dvc exp show --only-changed --drop '^(data|runs|figures|metrics/eval)(/|$$)'

clean-venv:
	rm -rf $(VENV)
