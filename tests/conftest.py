"""Shared fixtures: a demo archive on disk, the demo world (that archive labelled and released, built once per
session and copied per module), temp data dirs, and real servers (SeaweedFS, PostgreSQL, Redis)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .services import S3_KEY, S3_SECRET, free_port, wait_for_port  # noqa: F401 (re-exported)
from .services import seaweedfs as seaweedfs_server

if TYPE_CHECKING:  # imported where used: helpers imports dagster, which the pure tests do not need
    from .helpers import World

# Material beside the checkout in the project's own workspace; a user's clone has none of it, and every test
# that reads it takes it through the `shared` fixture, which skips without it.
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "samples" / "camera-traps"


def _import_anyio_now() -> None:
    """anyio imports its parts on first use, which for the portal's streamed files is a server thread. anyio is
    a pytest plugin, so pytest rewrites those imports, and CPython 3.11.7's compiler is not thread-safe for that
    (CI: "SystemError: AST constructor recursion depth mismatch"). Importing them here, once, avoids the race."""
    import warnings

    import anyio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in dir(anyio):
            getattr(anyio, name, None)


_import_anyio_now()


def shared_path(relative: str) -> Path:
    """A path under ../shared, or a skip when this checkout has none (a user's clone)."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"../shared/{relative} is not beside this checkout")
    return path


@pytest.fixture
def samples() -> Path:
    """The real camera-trap photos (../shared/samples/camera-traps); skips when absent."""
    return shared_path("samples/camera-traps")


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory) -> Path:
    """A small demo archive (local folder), written once per session through the CLI's generator."""
    from wildbench_assets.cli import main

    root = tmp_path_factory.mktemp("demo-archive")
    assert main(["demo-archive", str(root), "--events-per-camera", "4"]) == 0
    return root


# The demo world: built once per session (once across xdist workers), copied by each module that uses it.
_SHARED_WORLDS: list[list] = []  # [world, fingerprint at first use] of this process


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory) -> World:
    """The demo archive labelled, releases 2026.11 and 2026.11-thesis cut, their datasets and the leaderboard
    (`helpers.build_world`). Shared and read-only: a test that changes anything takes `world_copy` or
    `fresh_world` instead (a change is caught after the module). Under xdist the first worker builds it in
    the run's common temp folder and the others wait for it, under a file lock."""
    from filelock import FileLock

    from .helpers import WORLD_READY, World, build_world

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "demo-world"
    with FileLock(f"{root}.lock"):
        if not (root / WORLD_READY).exists():
            shutil.rmtree(root, ignore_errors=True)  # a build that failed half-way
            root.mkdir(parents=True)
            build_world(root)
    world = World(root)
    _SHARED_WORLDS.append([world, world.fingerprint()])
    return world


@pytest.fixture(scope="module")
def world_copy(demo_world, tmp_path_factory) -> World:
    """The module's own copy of the demo world: its tests may change it (and see each other's changes)."""
    world = demo_world.copy_to(tmp_path_factory.mktemp("world"))
    yield world
    world.close()


@pytest.fixture
def fresh_world(demo_world, tmp_path) -> World:
    """A copy of the demo world for one test alone."""
    world = demo_world.copy_to(tmp_path / "world")
    yield world
    world.close()


@pytest.fixture(autouse=True, scope="module")
def _shared_world_is_unchanged():
    """After each module: the shared demo world is as it was built. A test that wrote into it (instead of a
    copy) fails here, naming what changed."""
    yield
    for entry in _SHARED_WORLDS:
        world, recorded = entry
        changed = world.changes_since(recorded)
        if changed:
            entry[1] = world.fingerprint()  # reported once, against the module that ran when it changed
            pytest.fail(f"the shared demo world {world.root} was changed (take world_copy or fresh_world to "
                        f"change a world): {changed[:10]}{' ...' if len(changed) > 10 else ''}", pytrace=False)


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
def postgres():
    """A real PostgreSQL server (Debian's) on a free loopback port; yields (host, port, user, db)."""
    from .services import postgres_server

    try:
        with postgres_server() as server:
            yield server
    except FileNotFoundError as err:
        pytest.fail(str(err))


@pytest.fixture
def redis(tmp_path):
    """A real Redis on loopback (Debian's redis-server); yields its URL."""
    from .services import redis_server

    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture
def pg_database(postgres, request):
    """A database of its own on the session's PostgreSQL server: one instance's runs never meet another's."""
    import re

    import psycopg2

    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    connection = psycopg2.connect(host=postgres["host"], port=postgres["port"], user=postgres["user"],
                                  dbname=postgres["db"])
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return {**postgres, "db": name}


# Test tiers. `make check` runs the unmarked (fast) tier; `make test` runs every tier. A test joins a tier by
# the fixtures it uses, so a new test lands in the right tier without remembering a marker; tests that are
# slow for other reasons (subprocesses, daemon ticks, training) carry `@pytest.mark.slow` themselves.
TIER_BY_FIXTURE = {
    "services": {"seaweedfs", "s3_env", "postgres", "pg_database", "redis", "served"},
    "browser": {"browser"},
    "slow": {"demo_archive", "big_archive", "demo_world", "world_copy", "fresh_world"},  # pipelines run over them
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in TIER_BY_FIXTURE.items():
            if used & fixtures:
                item.add_marker(marker)
