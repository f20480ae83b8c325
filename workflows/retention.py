"""RetentionWorkflow: the daily recording retention run (a Temporal Schedule, overlap SKIP).

Recordings older than the policy go unless on legal hold, and so do erased people's; the
run's report (counts and recording ids) is stored in the state store and returned.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.privacy import PrivacyActivities
    from callbridge.domain.privacy_models import RetentionInput, RetentionReport, RetentionScan

WORKFLOW_ID = "recording-retention"
SCHEDULE_ID = "recording-retention-daily"
BATCH = 100  # conversations per activity: a crash repeats at most one batch
RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))


@workflow.defn
class RetentionWorkflow:
    @workflow.run
    async def run(self, inp: RetentionInput) -> RetentionReport:
        info = workflow.info()
        run_id = f"{info.workflow_id}/{info.run_id}"
        scan = RetentionScan(run_id=run_id, max_age_days=inp.max_age_days, dry_run=inp.dry_run)
        conversations = await workflow.execute_activity_method(
            PrivacyActivities.retention_conversations, scan, start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=2), retry_policy=RETRY,
        )
        report = RetentionReport(run_id=run_id)
        for i in range(0, len(conversations), BATCH):
            part = await workflow.execute_activity_method(
                PrivacyActivities.retention_apply, scan.model_copy(update={"conversation_ids": conversations[i:i + BATCH]}),
                start_to_close_timeout=timedelta(minutes=30), heartbeat_timeout=timedelta(minutes=2), retry_policy=RETRY,
            )
            report.checked += part.checked
            report.kept += part.kept
            report.deleted_retention += part.deleted_retention
            report.deleted_gdpr += part.deleted_gdpr
            report.kept_legal_hold += part.kept_legal_hold
        await workflow.execute_activity_method(
            PrivacyActivities.retention_save_report, report, start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY,
        )
        return report
