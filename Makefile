# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint format lab bench clean

setup: $(STAMP)  ## virtualenv + install (near-instant when nothing changed)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

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
