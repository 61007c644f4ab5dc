# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
PARTS  := contracts chassis services/identity services/patient services/sla-monitor services/forms services/documents services/gateway platform
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install dev run test lint typecheck unit contracts bench clean debian-packages

$(VENV)/.installed: constraints.txt $(foreach p,$(PARTS),$(p)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt $(foreach p,$(PARTS),-e ./$(p))
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt ruff mypy pytest pytest-asyncio pytest-timeout asgi-lifespan fhir.resources pytest-benchmark
	touch $@

# Debian libraries the documents toolkit loads (WeasyPrint: pango and harfbuzz's font subsetter;
# PDF font: DejaVu through fontconfig). Installed only when missing and when running as root
# (CI, fresh machines).
DEBIAN_PACKAGES := fontconfig fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0
debian-packages:
	@if ! { command -v fc-match >/dev/null && fc-list | grep -q DejaVuSans && \
	        ldconfig -p | grep -q libpangoft2-1.0 && ldconfig -p | grep -q libharfbuzz-subset; }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBIAN_PACKAGES); \
	  else echo "missing Debian packages, install: $(DEBIAN_PACKAGES)" >&2; exit 1; fi; \
	fi

install: debian-packages $(VENV)/.installed
dev: debian-packages $(VENV)/.dev

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
