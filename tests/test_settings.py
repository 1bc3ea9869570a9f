"""The environment is read in one module (settings.py) and only when definitions are built or a command
starts, never at import: a worker or the portal can import everything before its environment is complete,
and a test's environment is the one its definitions see."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wildbench_assets.definitions import build_defs
from wildbench_assets.settings import SettingsError

# Imports every module of the package with a poisoned environment, recording each WildBench variable read.
IMPORT_EVERYTHING = r"""
import importlib, os, pkgutil, sys

class Recording(os._Environ):
    read = set()
    def __getitem__(self, key):
        frame = sys._getframe(1)
        while frame.f_code.co_filename.endswith(("os.py", "_collections_abc.py")):
            frame = frame.f_back
        if str(key).startswith("WILDBENCH_") and "wildbench_assets" in frame.f_code.co_filename:
            Recording.read.add(f"{key} in {frame.f_code.co_filename.rsplit('/', 1)[-1]}")
        return super().__getitem__(key)

os.environ.__class__ = Recording
import wildbench_assets
names = sorted(m.name for m in pkgutil.walk_packages(wildbench_assets.__path__, "wildbench_assets."))
for name in names:
    importlib.import_module(name)
import wildbench_assets.celery_app  # its app is built on first use, not here
print(len(names), sorted(Recording.read))
"""

POISON = {"WILDBENCH_DEPLOYMENT": "nowhere", "WILDBENCH_ARRIVALS_INTERVAL_S": "soon",
          "WILDBENCH_AUTOMATION_INTERVAL_S": "-1", "WILDBENCH_REFRESH_CRON": "whenever",
          "WILDBENCH_RELEASE_CRON": "monthly", "WILDBENCH_RETENTION_CRON": "x", "WILDBENCH_CELERY_VISIBILITY_S": "6h",
          "WILDBENCH_S3_ENDPOINT_URL": "ftp://nowhere", "WILDBENCH_DATA": "/nonexistent/data"}


def test_importing_every_module_reads_no_setting(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path), **POISON}
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    count, read = done.stdout.strip().split(" ", 1)
    assert int(count) > 60 and read == "[]", done.stdout


def test_settings_are_read_when_the_definitions_are_built(monkeypatch):
    for name, value in {"WILDBENCH_ARRIVALS_INTERVAL_S": "7", "WILDBENCH_AUTOMATION_INTERVAL_S": "9",
                        "WILDBENCH_REFRESH_CRON": "15 5 * * *", "WILDBENCH_RELEASE_CRON": "0 6 2 * *",
                        "WILDBENCH_RETENTION_CRON": "0 7 * * *"}.items():
        monkeypatch.setenv(name, value)
    defs = build_defs("local")
    intervals = {s.name: s.minimum_interval_seconds for s in defs.sensors}
    assert intervals["archive_arrivals"] == 7 and intervals["wildbench_automation"] == 9
    assert {s.name: s.cron_schedule for s in defs.schedules} == {"monthly_release": "0 6 2 * *",
                                                                 "request_retention": "0 7 * * *"}
    splits = defs.resolve_asset_graph().get(__import__("dagster").AssetKey("benchmark_splits"))
    assert splits.automation_condition.get_label() == "nightly_when_inputs_changed(15 5 * * *)"


@pytest.mark.parametrize(("name", "value"), [("WILDBENCH_ARRIVALS_INTERVAL_S", "soon"),
                                             ("WILDBENCH_REFRESH_CRON", "whenever"),
                                             ("WILDBENCH_RELEASE_CRON", "0 3 1 *"),
                                             ("WILDBENCH_DEPLOYMENT", "nowhere")])
def test_a_bad_setting_is_named_when_the_definitions_are_built(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        build_defs()


def test_dagsters_loader_builds_the_lazy_definitions(monkeypatch, tmp_path):
    """workspace.yaml's `defs` is a `@dg.definitions` function: Dagster's loader calls it."""
    from dagster._core.definitions.reconstruct import repository_def_from_target_def

    from wildbench_assets.definitions import defs

    monkeypatch.setenv("WILDBENCH_DATA", str(tmp_path))
    monkeypatch.setenv("WILDBENCH_ARRIVALS_INTERVAL_S", "11")
    repository = repository_def_from_target_def(defs)
    assert repository.get_sensor_def("archive_arrivals").minimum_interval_seconds == 11
    assert repository.has_job("release_job")
