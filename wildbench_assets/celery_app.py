"""The Celery app workers run: `celery -A wildbench_assets.celery_app worker -Q gpu --concurrency 1`
(`make worker QUEUE=gpu`). Dagster's own step task, with the executor's settings (`execution.py`)."""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from wildbench_assets.execution import celery_broker, celery_settings

if not celery_broker():
    raise SystemExit("WILDBENCH_CELERY_BROKER is not set (e.g. redis://127.0.0.1:6379/0)")

app = make_app(CeleryExecutor.for_cli(broker=celery_broker(), backend=celery_broker(),
                                      include=["wildbench_assets.definitions"],
                                      config_source=celery_settings()).app_args())
execute_plan = create_task(app)
