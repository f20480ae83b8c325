"""The Callbridge worker: every workflow and activity on one task queue.

Blocking simple-salesforce calls run as sync activities in a thread pool, so they never
block the event loop. SIGTERM/SIGINT drain: in-flight activities finish, then it exits.
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import structlog
from temporalio.worker import Worker

from activities import build_activities
from callbridge.core.alerts import WorkerAlerts
from callbridge.core.logs import configure_logging
from callbridge.core.memory import limit_arenas, release_free_memory_every
from callbridge.core.metrics import MetricsInterceptor, serve_worker_metrics
from callbridge.ops.schedules import ensure_schedules
from callbridge.core.secrets_policy import refuse_demo_secrets
from callbridge.core.settings import Settings, get_settings
from callbridge.core.temporal import connect
from workflows import WORKFLOWS

log = structlog.get_logger("callbridge.worker")
MAX_CONCURRENT_ACTIVITIES = 64
TRIM_EVERY_SECONDS = 60.0


async def run_worker(settings: Settings) -> None:
    serve_worker_metrics(settings)  # before connect: the SDK's metrics runtime must be the default
    alerts = WorkerAlerts(settings)
    client = await connect(settings)
    await ensure_schedules(client, settings)
    with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES) as executor:
        worker = Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=WORKFLOWS,
            activities=build_activities(settings),
            activity_executor=executor,
            max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
            graceful_shutdown_timeout=timedelta(seconds=20),
            interceptors=[MetricsInterceptor(on_sync_run=alerts.on_sync_run)],
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker started", task_queue=settings.temporal_task_queue,
                 workflows=[w.__name__ for w in WORKFLOWS])
        async with worker:
            background = [asyncio.create_task(alerts.run()),
                          asyncio.create_task(release_free_memory_every(TRIM_EVERY_SECONDS))]
            await stop.wait()
            for task in background:
                task.cancel()
            log.info("worker draining")
    log.info("worker stopped")


def main() -> None:
    limit_arenas()  # first, while this is the only thread (see callbridge/core/memory.py)
    settings = get_settings()
    refuse_demo_secrets(settings)  # public demo secrets only in the demo (callbridge/core/secrets_policy.py)
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
