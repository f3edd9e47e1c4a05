# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup lock demo test lint format lab bench clean

setup: $(STAMP)  ## virtualenv + install (near-instant when nothing changed)

# The install set is requirements.lock (resolved from requirements.txt by `make lock`), so CI installs exactly
# what was tested. uv installs it in seconds; pip is the fallback when uv cannot be had.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1 \
	  && $(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock \
	  && $(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . ; then :; \
	else \
	  echo "uv unavailable: installing with pip (slower)"; \
	  $(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock \
	  && $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e . ; \
	fi
	@touch $(STAMP)

lock: setup  ## re-resolve requirements.txt into requirements.lock (after changing requirements.txt)
	$(BIN)/uv pip compile requirements.txt --python-version 3.11.7 --no-header --no-annotate -q -o requirements.lock

demo: setup  ## start the sandbox, run every runbook, print where the evidence is
	$(BIN)/opsnb demo

test: setup  ## the whole suite (starts and stops its own sandbox)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check opsnb tests bench
	$(BIN)/ruff format --check opsnb tests bench

format: setup
	$(BIN)/ruff format opsnb tests bench
	$(BIN)/ruff check --fix opsnb tests bench

lab: setup  ## JupyterLab on the runbooks, pointed at the sandbox
	$(BIN)/opsnb lab --env sandbox

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	-$(BIN)/opsnb sandbox down
	rm -rf $(VENV) outputs
