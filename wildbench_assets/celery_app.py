"""The Celery app workers run: `celery -A wildbench_assets.celery_app worker -Q gpu --concurrency 1`
(`make worker QUEUE=gpu`). Dagster's own step task, with the executor's settings (`execution.py`).

`app` is built on first access (a module `__getattr__`), not at import: importing this module reads no
environment; Celery's `-A` looks the attribute up, which builds it then."""

from __future__ import annotations

from functools import cache


@cache
def _build():
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    from wildbench_assets.execution import celery_settings
    from wildbench_assets.settings import celery_broker

    broker = celery_broker()
    if not broker:
        raise SystemExit("WILDBENCH_CELERY_BROKER is not set (e.g. redis://127.0.0.1:6379/0)")
    app = make_app(CeleryExecutor.for_cli(broker=broker, backend=broker, include=["wildbench_assets.definitions"],
                                          config_source=celery_settings()).app_args())
    return app, create_task(app)


def __getattr__(name: str):
    if name == "app":
        return _build()[0]
    if name == "execute_plan":
        return _build()[1]
    raise AttributeError(name)
