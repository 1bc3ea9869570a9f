# WildBench: every target sets itself up from a fresh clone.
#   make demo   venv + install + demo archive + the main pipeline + a release + models trained and scored on it,
#               on the embedded default (README's first command)
#   make test   venv + install + services + lint (ruff) + the whole test suite (README's second command; .ci/run calls it)
#   make check  lint + the fast test tier (no services, no demo world, no browser): the loop to run every few minutes
#   make dev    the Dagster UI (webserver + daemon) on the same instance, and the portal beside it
#   make portal the researcher portal alone (http://127.0.0.1:8080; WILDBENCH_PORTAL_TOKEN enables work)
#   make worker a Celery worker for production steps (QUEUE=cpu|gpu; needs the production environment,
#               deploy/env.example); the same command as the compose file's worker services
#   make image  the container images with podman, from Debian's packages (mmdebstrap base; no registry)
#   make container-smoke  the compose stack end to end on those images, then torn down (not in `make test`:
#               about 5 minutes with the images built, ~15 from nothing; see README "Containers")

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export WILDBENCH_DATA ?= $(CURDIR)/data
DEMO_ARCHIVE ?= $(WILDBENCH_DATA)/demo-archive

.PHONY: install demo test check dev portal worker services bench clean image container-smoke

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# scripts/install-ml.sh adds the model packages that cannot be plain dependencies (zamba's checkpoint,
# ultralytics-yolov5 built offline, megadetector); it says why for each.
$(VENV)/.installed: pyproject.toml scripts/install-ml.sh | $(BIN)/activate
	$(BIN)/pip install -q -e ".[test]"
	bash scripts/install-ml.sh $(VENV)
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	test -f $(DEMO_ARCHIVE)/manifest.json || $(BIN)/wildbench demo-archive $(DEMO_ARCHIVE)
	$(BIN)/wildbench run --archive $(DEMO_ARCHIVE)
	$(BIN)/wildbench release --archive $(DEMO_ARCHIVE) --if-changed
	$(BIN)/wildbench run --archive $(DEMO_ARCHIVE)

services:
	bash scripts/install-services.sh

# Two workers, one test module each at a time (module fixtures build their world once): half the suite
# waits on servers, subprocesses and daemon ticks, so the second worker fills that time.
test: install services
	$(BIN)/ruff check wildbench_assets tests bench
	$(BIN)/pytest -n 2 --dist loadfile --durations=15

check: install
	$(BIN)/ruff check wildbench_assets tests bench
	$(BIN)/pytest -q -m "not slow and not services and not browser"

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/wildbench portal & trap 'kill $$!' EXIT; $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

portal: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/wildbench portal --host 127.0.0.1 --port 8080

QUEUE ?= cpu
worker: install
	$(BIN)/celery -A wildbench_assets.celery_app worker -Q $(QUEUE) --concurrency 1 -n $(QUEUE)@%h --loglevel INFO

image:
	bash scripts/build-image.sh

container-smoke: image
	bash scripts/container-smoke.sh

bench: install
	$(BIN)/python bench/bench_exif.py

clean:
	rm -rf $(VENV) $(DAGSTER_HOME) $(WILDBENCH_DATA) .pytest_cache
