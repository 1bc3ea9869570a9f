"""Every setting WildBench takes from the environment, and the one module that reads it.

Where things live by default (all inside the checkout), intervals, schedules and services, each
overridable by an environment variable. Nothing here runs at import: each function reads the environment
when it is called, which is when definitions are built or a command starts, so the CLI and tests can set
the environment first (tests/test_settings.py imports every module with a poisoned environment).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFRESH_CRON = "0 2 * * *"  # nightly, 02:00 UTC
DEPLOYMENTS = ("local", "prod")


class SettingsError(Exception):
    """A setting is missing or invalid (e.g. an unset environment variable in prod); the message names it."""


def whole_number(name: str, default: int, minimum: int = 1) -> int:
    """An integer setting (unset or empty: `default`); anything else is a SettingsError naming it."""
    raw = os.environ.get(name) or ""
    if not raw:
        return default
    if not raw.strip().isdigit() or int(raw) < minimum:
        raise SettingsError(f"{name}={raw!r} is not a whole number >= {minimum}")
    return int(raw)


def _cron(name: str, default: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    value = os.environ.get(name) or default
    if not is_valid_cron_string(value):
        raise SettingsError(f"{name}={value!r} is not a cron expression (five fields, e.g. {default!r})")
    return value


def _url(name: str) -> str | None:
    from urllib.parse import urlsplit

    value = os.environ.get(name) or None
    parts = urlsplit(value or "")
    if value is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
        # the value is not echoed: an address may carry credentials (user:secret@host)
        raise SettingsError(f"{name} is not an http(s)://host[:port] address (scheme {parts.scheme or 'missing'!r})")
    return value


def check_environment() -> None:
    """Every WildBench setting of the environment is well-formed; else a SettingsError naming the variable
    and what is wrong (read once up front, so no command starts and then dies in a traceback). The cron
    settings are checked where the schedules are built (that needs Dagster, which light commands skip)."""
    deployment()
    arrivals_interval_s()
    automation_interval_s()
    celery_visibility_s()
    download_expiry_s()
    request_retention_days()
    for name in ("WILDBENCH_S3_ENDPOINT_URL", "WILDBENCH_S3_PUBLIC_ENDPOINT_URL"):
        _url(name)


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


def use_dagster_home(home: Path) -> None:
    """Point Dagster (which reads DAGSTER_HOME itself) at `home`."""
    os.environ["DAGSTER_HOME"] = str(home)


def deployment() -> str:
    value = os.environ.get("WILDBENCH_DEPLOYMENT") or "local"
    if value not in DEPLOYMENTS:
        raise SettingsError(f"WILDBENCH_DEPLOYMENT={value!r} is not one of {', '.join(DEPLOYMENTS)}")
    return value


def taxonomy_file() -> str | None:
    return os.environ.get("WILDBENCH_TAXONOMY") or None


def optional(name: str) -> str | None:
    """An optional setting of the local deployment (unset or empty: None)."""
    return os.environ.get(name) or None


def refresh_cron() -> str:
    """When the benchmark's splits (and what follows them) may refresh: nightly by default."""
    return _cron("WILDBENCH_REFRESH_CRON", DEFAULT_REFRESH_CRON)


def release_cron() -> str:
    """When the release schedule looks for changes worth a new release: monthly by default."""
    return _cron("WILDBENCH_RELEASE_CRON", "0 3 1 * *")


def data_licence() -> str:
    """The archive owner's terms for the images and labels, for releases cut without `licence` in their run
    config (the schedule's): empty when the operator has not stated them."""
    return (os.environ.get("WILDBENCH_DATA_LICENCE") or "").strip()


def portal_token() -> str | None:
    """The API token the portal's operator configured; without one, nothing that starts work is accepted."""
    return os.environ.get("WILDBENCH_PORTAL_TOKEN") or None


def arrivals_interval_s() -> int:
    """Seconds between two listings of the archive by the `archive_arrivals` sensor (default 60)."""
    return whole_number("WILDBENCH_ARRIVALS_INTERVAL_S", 60)


def automation_interval_s() -> int:
    """Seconds between two evaluations of the automation conditions (default 30)."""
    return whole_number("WILDBENCH_AUTOMATION_INTERVAL_S", 30)


def celery_broker() -> str | None:
    """The Redis URL of the Celery broker; unset: steps run in process (the embedded default)."""
    return optional("WILDBENCH_CELERY_BROKER")


def celery_visibility_s() -> int:
    """How long a step handed to a worker may run before Redis hands it out again: 6 h by default."""
    return whole_number("WILDBENCH_CELERY_VISIBILITY_S", 6 * 3600)


def s3_endpoint_url() -> str | None:
    return _url("WILDBENCH_S3_ENDPOINT_URL")


def log_bucket() -> str | None:
    """The bucket of the step logs in production (deploy/dagster.yaml's S3ComputeLogManager)."""
    return optional("WILDBENCH_LOG_BUCKET")


def bucket_uris() -> list[str]:
    """The locations the environment names that `wildbench buckets` creates when they are s3:// URIs."""
    return [os.environ.get(name) or "" for name in
            ("WILDBENCH_ARCHIVE", "WILDBENCH_DATA", "WILDBENCH_REQUESTS", "WILDBENCH_SUBMISSIONS")]


def download_expiry_s() -> int:
    """How long a presigned download URL works: 7 days by default (the most S3 signatures allow)."""
    return min(whole_number("WILDBENCH_DOWNLOAD_EXPIRY_S", 7 * 86400), 7 * 86400)


def request_retention_days() -> int:
    """Custom-request ZIPs older than this are deleted by the `delete_custom_datasets` schedule."""
    return whole_number("WILDBENCH_REQUEST_RETENTION_DAYS", 30, minimum=0)


def retention_cron() -> str:
    return _cron("WILDBENCH_RETENTION_CRON", "30 4 * * *")


def submitter_tokens() -> dict[str, str]:
    """Per-submitter portal tokens (`WILDBENCH_PORTAL_TOKENS_FILE`: a JSON object name -> token), beside
    the operator's `WILDBENCH_PORTAL_TOKEN` (submitter `operator`). A submission's score is shown only to
    the token it was sent with, and the submission limit counts per submitter."""
    from wildbench_assets.lib.submissions import SubmitterError, parse_tokens

    path = os.environ.get("WILDBENCH_PORTAL_TOKENS_FILE")
    if not path:
        return {}
    try:
        return parse_tokens(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SubmitterError) as err:
        raise SubmitterError(f"WILDBENCH_PORTAL_TOKENS_FILE={path}: {err}") from err


def submission_limit():
    """How many submissions one submitter may make per release within a window: `WILDBENCH_SUBMISSION_LIMIT`
    (default 3) per `WILDBENCH_SUBMISSION_WINDOW_H` hours (default 24)."""
    from datetime import timedelta

    from wildbench_assets.lib.submissions import DEFAULT_LIMIT, Limit, SubmitterError

    raw = (os.environ.get("WILDBENCH_SUBMISSION_LIMIT") or str(DEFAULT_LIMIT),
           os.environ.get("WILDBENCH_SUBMISSION_WINDOW_H") or "24")
    try:
        per_window, hours = int(raw[0]), float(raw[1])
    except ValueError:
        per_window, hours = -1, 0.0
    if per_window < 0 or not 0 < hours < 1e6:
        raise SubmitterError(f"WILDBENCH_SUBMISSION_LIMIT={raw[0]!r} / WILDBENCH_SUBMISSION_WINDOW_H={raw[1]!r}: "
                             "a whole number >= 0 per a positive number of hours")
    return Limit(per_window, timedelta(hours=hours))
