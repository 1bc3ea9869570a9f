"""How steps execute: in process (the local default), or on Celery workers over Redis (production, when
WILDBENCH_CELERY_BROKER is set). The executor and the workers (`celery_app.py`) read one settings function,
so they always agree on broker, queues and delivery rules."""

from __future__ import annotations

import dagster as dg

from wildbench_assets import settings

CPU_QUEUE, GPU_QUEUE = "cpu", "gpu"
GPU_POOL = "gpu"
# Heavy steps (detection, training, inference): routed to GPU workers and counted against the `gpu` pool,
# so no more of them run at once than there are GPUs. The instance sets the pool's limit (deploy/dagster.yaml:
# 1, `dagster instance concurrency set gpu N`; the embedded dagster.yaml: its default limit, 2).
GPU_STEP = {"dagster-celery/queue": GPU_QUEUE}


def celery_settings() -> dict:
    """The Celery app's settings. Steps are acknowledged when they end (`acks_late`), so a worker killed
    mid-step hands its step back to the queue: at once when only the process running it dies, after the
    visibility timeout when the whole worker (or its machine) does. The timeout must exceed the longest
    step, or a step still running would be handed out twice: 6 h by default."""
    return {
        "task_default_queue": CPU_QUEUE,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_redirect_stdouts": False,  # else Celery swallows what Dagster captures into the step logs
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.celery_visibility_s(),
            "max_retries": 5, "interval_start": 0, "interval_step": 0.5, "interval_max": 3},
        "result_backend_transport_options": {"retry_policy": {"timeout": 10.0}},
        "result_backend_always_retry": True,  # a step's result is stored even across a Redis restart
        "result_backend_max_retries": 30,
        "redis_backend_health_check_interval": 10,
        "redis_retry_on_timeout": True,
        "redis_socket_timeout": 30,
    }


def executor() -> dg.ExecutorDefinition:
    """Celery on Redis when a broker is configured; in process otherwise (the embedded default)."""
    if not settings.celery_broker():
        return dg.in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured({
        "broker": {"env": "WILDBENCH_CELERY_BROKER"},  # resolved at run time: the URL never enters run config
        "backend": {"env": "WILDBENCH_CELERY_BROKER"},
        "include": ["wildbench_assets.definitions"],
        "config_source": celery_settings(),
    }, name="celery")
