"""Shared fixtures: a demo archive on disk, temp data dirs, and real servers (SeaweedFS, PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .services import S3_KEY, S3_SECRET, free_port, wait_for_port  # noqa: F401 (re-exported)
from .services import seaweedfs as seaweedfs_server

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "camera-traps"


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory) -> Path:
    """A small demo archive (local folder), written once per session through the CLI's generator."""
    from wildbench_assets.cli import main

    root = tmp_path_factory.mktemp("demo-archive")
    assert main(["demo-archive", str(root), "--events-per-camera", "4"]) == 0
    return root


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("WILDBENCH_DATA", str(path))
    return path


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A real S3-compatible server on loopback (SeaweedFS `weed mini`); yields its endpoint URL."""
    with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(seaweedfs, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("WILDBENCH_S3_ENDPOINT_URL", seaweedfs)
    return seaweedfs


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server (Debian's) on a free loopback port; yields (host, port, user, db)."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries:
        pytest.fail("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql)")
    bin_dir = binaries[-1]
    root = Path(tempfile.mkdtemp(prefix="wildbench-pg-"))  # pytest's tmp dirs are not traversable by `postgres`
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True)
    port = free_port()
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-o",
                    f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "-w", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "dagster"],
                       check=True, capture_output=True)
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "db": "dagster"}
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis(tmp_path):
    """A real Redis on loopback (Debian's redis-server); yields its URL."""
    from .services import redis_server

    with redis_server(tmp_path) as url:
        yield url
