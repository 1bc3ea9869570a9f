"""Where things live by default: all inside the checkout, each overridable by an environment variable.

Read when definitions are built (not at import), so the CLI and tests can set the environment first.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> str:
    return os.environ.get("WILDBENCH_DATA") or str(PROJECT_ROOT / "data")


def default_archive_uri() -> str:
    return os.environ.get("WILDBENCH_ARCHIVE") or str(Path(default_data_dir()) / "demo-archive")


def default_dagster_home() -> str:
    return os.environ.get("DAGSTER_HOME") or str(PROJECT_ROOT / ".dagster_home")
