"""Temporal Schedules Callbridge relies on, created idempotently when the worker starts."""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    SchedulePolicy,
    ScheduleOverlapPolicy,
    ScheduleSpec,
)

from callbridge.models import IndexRefreshRequest
from callbridge.settings import Settings

log = structlog.get_logger("callbridge.schedules")


async def ensure_schedules(client: Client, settings: Settings) -> None:
    from workflows.caller_index import SCHEDULE_ID, WORKFLOW_ID, CallerIndexRefreshWorkflow

    schedules = {
        SCHEDULE_ID: Schedule(
            action=ScheduleActionStartWorkflow(
                CallerIndexRefreshWorkflow.run,
                IndexRefreshRequest(lookback_seconds=settings.index_lookback_seconds),
                id=WORKFLOW_ID,
                task_queue=settings.temporal_task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.index_refresh_seconds))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ),
    }
    for schedule_id, schedule in schedules.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            log.info("schedule created", schedule_id=schedule_id)
        except ScheduleAlreadyRunningError:
            pass
