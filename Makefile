# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
PARTS  := contracts chassis services/identity services/patient services/sla-monitor services/forms services/gateway platform
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install dev run test lint typecheck unit contracts bench clean

$(VENV)/.installed: constraints.txt $(foreach p,$(PARTS),$(p)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt $(foreach p,$(PARTS),-e ./$(p))
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt ruff mypy pytest pytest-asyncio pytest-timeout asgi-lifespan fhir.resources pytest-benchmark hypothesis
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev

run: install
	$(PY) -m bsante.platform --port $(PORT)

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: dev
	$(VENV)/bin/mypy contracts/src chassis/src services/*/src platform/src

contracts: dev
	$(PY) -m bsante.contracts.generate

test: dev lint typecheck
	$(VENV)/bin/pytest -q

bench: dev
	$(VENV)/bin/pytest -q -p no:cacheprovider bench --benchmark-columns=min,mean,max,rounds

clean:
	rm -rf $(VENV) var
