# Tessera: build, run and test entry points (GNU make). `make help` lists the targets.
#
# Variables: PORT (make run, default 8000), WEB_CONCURRENCY (gunicorn workers, default 3), WEB_THREADS
# (threads per worker, default 4),
# PYTEST_ARGS (extra pytest arguments for make test), PYTHON (interpreter for the venv).
# DATABASE_URL / REDIS_URL in the environment replace the private servers bin/services.sh runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Steps depend on each other's side effects (packages before servers before migrations).
.NOTPARALLEL:

PYTHON ?= python3
VENV := .venv
PORT ?= 8000
PYTEST_ARGS ?=
export PORT PYTEST_ARGS PYTHON

VENV_PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.requirements.stamp
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help deps system-deps venv services migrate run test lint format stop status clean

help:
	@echo "make run      install what is missing, start PostgreSQL/Redis, migrate, serve on 127.0.0.1:$(PORT)"
	@echo "make test     install what is missing, start PostgreSQL/Redis, ruff + migrations check + pytest"
	@echo "make deps     Debian packages (only missing ones) and the .venv"
	@echo "make services start the private PostgreSQL + PostGIS and Redis under ./var"
	@echo "make migrate  services + manage.py migrate"
	@echo "make lint     ruff check + ruff format --check"
	@echo "make format   ruff format + ruff check --fix"
	@echo "make status   what runs where;  make stop  stop the services;  make clean  stop + remove var/"

deps: system-deps venv
	@$(VENV_PY) -c "from django.conf import settings; settings.configure(); \
	from django.contrib.gis.gdal import gdal_version; from django.contrib.gis.geos import geos_version; \
	print('deps: GeoDjango sees GDAL', gdal_version().decode(), 'and GEOS', geos_version().decode())"

system-deps:
	@bin/deps.sh

venv: $(VENV_STAMP)

# pip runs again only when a requirements file changed since the last install.
$(VENV_STAMP): $(wildcard requirements*.txt)
	@test -x $(VENV_PY) || { echo "deps: creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@$(VENV_PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "deps: $(VENV) must use Python >= 3.11 (remove it and set PYTHON)" >&2; exit 1; }
	@echo "deps: pip install -r requirements-dev.txt"
	@$(VENV_PY) -m pip install --disable-pip-version-check --no-input -q -r requirements-dev.txt
	@touch $@

services:
	@bin/services.sh start

# Same environment as `make run` (bin/app-env.sh), so it migrates the database the server uses.
migrate: venv services
	@bin/manage.sh migrate --noinput

run: deps services
	@bin/run.sh

test: deps services
	@bin/test.sh

lint: venv
	ruff check .
	ruff format --check .

format: venv
	ruff format .
	ruff check --fix .

status:
	@bin/services.sh status || true

stop:
	@bin/services.sh stop

clean: stop
	rm -rf var
