"""Where things live by default: all inside the checkout, each overridable by an environment variable.

Read when definitions are built (not at import), so the CLI and tests can set the environment first.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> str:
    return os.environ.get("WILDBENCH_DATA") or str(PROJECT_ROOT / "data")


def cache_dir(data_dir: str) -> str:
    """Where steps keep local copies of artefacts stored in S3 (trainers and ZIP writers need files): never
    the data directory itself, which in production is a bucket."""
    import hashlib
    import tempfile

    root = os.environ.get("WILDBENCH_CACHE") or str(Path(tempfile.gettempdir(), "wildbench-cache"))
    return str(Path(root, hashlib.sha256(data_dir.encode()).hexdigest()[:12]))


def local_work_dir() -> Path:
    """A local folder for tool settings and scratch: the data directory, or its cache when that is a bucket."""
    data = default_data_dir()
    return Path(cache_dir(data)) if "://" in data else Path(data)


def default_archive_uri() -> str:
    return os.environ.get("WILDBENCH_ARCHIVE") or str(Path(default_data_dir()) / "demo-archive")


def default_dagster_home() -> str:
    return os.environ.get("DAGSTER_HOME") or str(PROJECT_ROOT / ".dagster_home")


def deployment() -> str:
    return os.environ.get("WILDBENCH_DEPLOYMENT") or "local"


def taxonomy_file() -> str | None:
    return os.environ.get("WILDBENCH_TAXONOMY") or None


def optional(name: str) -> str | None:
    """An optional setting of the local deployment (unset or empty: None)."""
    return os.environ.get(name) or None


def refresh_cron() -> str:
    """When the benchmark's splits (and what follows them) may refresh: nightly by default."""
    return os.environ.get("WILDBENCH_REFRESH_CRON") or "0 2 * * *"


def release_cron() -> str:
    """When the release schedule looks for changes worth a new release: monthly by default."""
    return os.environ.get("WILDBENCH_RELEASE_CRON") or "0 3 1 * *"


def portal_token() -> str | None:
    """The API token the portal's operator configured; without one, nothing that starts work is accepted."""
    return os.environ.get("WILDBENCH_PORTAL_TOKEN") or None


def interval_s(name: str, default: int) -> int:
    """A sensor's minimum interval, overridable for tests and busy archives."""
    return int(os.environ.get(name) or default)


def download_expiry_s() -> int:
    """How long a presigned download URL works: 7 days by default (the most S3 signatures allow)."""
    return min(int(os.environ.get("WILDBENCH_DOWNLOAD_EXPIRY_S") or 7 * 86400), 7 * 86400)


def request_retention_days() -> int:
    """Custom-request ZIPs older than this are deleted by the `delete_custom_datasets` schedule."""
    return int(os.environ.get("WILDBENCH_REQUEST_RETENTION_DAYS") or 30)


def retention_cron() -> str:
    return os.environ.get("WILDBENCH_RETENTION_CRON") or "30 4 * * *"
