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
    schedules.update(_privacy_schedules(settings))
    for schedule_id, schedule in schedules.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            log.info("schedule created", schedule_id=schedule_id)
        except ScheduleAlreadyRunningError:
            pass


def _privacy_schedules(settings: Settings) -> dict[str, Schedule]:
    """Recording retention once a day (docs/privacy.md)."""
    from temporalio.client import ScheduleCalendarSpec, ScheduleRange

    from callbridge.privacy_models import RetentionInput
    from workflows.retention import SCHEDULE_ID, WORKFLOW_ID, RetentionWorkflow

    return {
        SCHEDULE_ID: Schedule(
            action=ScheduleActionStartWorkflow(
                RetentionWorkflow.run, RetentionInput(max_age_days=settings.recording_retention_days),
                id=WORKFLOW_ID, task_queue=settings.temporal_task_queue,
            ),
            spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(settings.retention_hour_utc)])]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        ),
    }
