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

from callbridge.domain.models import IndexRefreshRequest
from callbridge.core.settings import Settings

log = structlog.get_logger("callbridge.ops.schedules")


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
    schedules.update(_reconciliation_schedules(settings))
    schedules.update(_privacy_schedules(settings))
    schedules.update(_sync_schedules(settings))
    for schedule_id, schedule in schedules.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            log.info("schedule created", schedule_id=schedule_id)
        except ScheduleAlreadyRunningError:
            pass


def _reconciliation_schedules(settings: Settings) -> dict[str, Schedule]:
    """Calls whose webhook never started their logging (a Temporal outage longer than Genesys's
    delivery retries): every 5 minutes, the last 2 hours (CALLBRIDGE_RECONCILIATION_*)."""
    from temporalio.client import ScheduleState

    from activities.call_reconciliation import ReconciliationRequest, ReconciliationSettings
    from workflows.call_reconciliation import SCHEDULE_ID, WORKFLOW_ID, CallReconciliationWorkflow

    config = ReconciliationSettings()
    return {
        SCHEDULE_ID: Schedule(
            action=ScheduleActionStartWorkflow(
                CallReconciliationWorkflow.run,
                ReconciliationRequest(lookback_seconds=config.lookback_seconds, settle_seconds=config.settle_seconds),
                id=WORKFLOW_ID, task_queue=settings.temporal_task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=config.every_seconds))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(paused=config.schedule_paused),
        ),
    }


def _privacy_schedules(settings: Settings) -> dict[str, Schedule]:
    """Recording retention once a day (docs/privacy.md)."""
    from temporalio.client import ScheduleCalendarSpec, ScheduleRange

    from callbridge.domain.privacy_models import RetentionInput
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


def _sync_schedules(settings: Settings) -> dict[str, Schedule]:
    """Contact sync every `interval_minutes` of the mapping; created paused unless enabled
    (CALLBRIDGE_SYNC_SCHEDULE_ENABLED), since a first run copies every contact."""
    from pathlib import Path

    from temporalio.client import ScheduleState

    from callbridge.domain.sync import config as sync_config
    from callbridge.domain.sync.models import ContactSyncInput
    from workflows.contact_sync import SCHEDULE_ID, WORKFLOW_ID, ContactSyncWorkflow

    mapping = sync_config.load(Path(settings.sync_config_path) if settings.sync_config_path else None)
    return {
        SCHEDULE_ID: Schedule(
            action=ScheduleActionStartWorkflow(
                ContactSyncWorkflow.run, ContactSyncInput.from_config(mapping), id=WORKFLOW_ID,
                task_queue=settings.temporal_task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=mapping.interval_minutes))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(paused=not settings.sync_schedule_enabled,
                                note="enable with CALLBRIDGE_SYNC_SCHEDULE_ENABLED=true or unpause here"),
        ),
    }
