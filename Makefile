# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
PARTS  := contracts chassis services/identity services/patient services/sla-monitor services/forms services/gateway platform
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

CLIENT := clients/typescript

.PHONY: install dev run test lint typecheck unit contracts bench clean client fuzz

$(VENV)/.installed: constraints.txt $(foreach p,$(PARTS),$(p)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt $(foreach p,$(PARTS),-e ./$(p))
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt ruff mypy pytest pytest-asyncio pytest-timeout asgi-lifespan fhir.resources pytest-benchmark schemathesis
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

# The TypeScript client a front-end team would generate: openapi-typescript over the merged
# OpenAPI document, then tsc over a typed call (clients/typescript/src/example.ts).
$(CLIENT)/node_modules/.installed: $(CLIENT)/package.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q nodejs npm; } \
	  || { echo "make client needs Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; }
	cd $(CLIENT) && npm install --no-audit --no-fund --no-package-lock --silent
	touch $@

client: dev $(CLIENT)/node_modules/.installed
	$(PY) tools/export_openapi.py $(CLIENT)/openapi.json
	cd $(CLIENT) && npx --no-install openapi-typescript openapi.json -o src/api.d.ts
	cd $(CLIENT) && npx --no-install tsc --noEmit -p .

test: dev lint typecheck client
	$(VENV)/bin/pytest -q

# A longer schemathesis campaign (fuzzing and stateful phases too) as every demo role.
fuzz: dev
	$(PY) tools/api_conformance.py --max-time $(or $(FUZZ_SECONDS),120)

bench: dev
	$(VENV)/bin/pytest -q -p no:cacheprovider bench --benchmark-columns=min,mean,max,rounds

clean:
	rm -rf $(VENV) var
