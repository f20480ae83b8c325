"""RetentionWorkflow (the daily recording retention run): every conversation applied once, in
batches of 100, a Genesys outage mid-run waited out without repeating the batches done, and the
summed report stored and returned. Genesys and the state store are test activities."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from callbridge.domain.privacy_models import RetentionInput, RetentionReport, RetentionScan
from tests.workflows.conftest import worker
from workflows.retention import WORKFLOW_ID, RetentionWorkflow

CONVERSATIONS = [f"conv-ret-{i:03d}" for i in range(250)]


class RetentionPlatforms:
    """Each conversation has one recording: even ones past the policy (deleted), odd ones kept.
    Genesys is down for an hour from the second batch's first attempt."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []  # applied, in order (a failed attempt isn't)
        self.failed_attempts = 0
        self.outage_ends: datetime | None = None
        self.saved: RetentionReport | None = None

    @activity.defn(name="retention_conversations")
    async def retention_conversations(self, scan: RetentionScan) -> list[str]:
        return CONVERSATIONS

    @activity.defn(name="retention_apply")
    async def retention_apply(self, scan: RetentionScan) -> RetentionReport:
        now = activity.info().current_attempt_scheduled_time
        if len(self.batches) == 1 and (self.outage_ends is None or now < self.outage_ends):
            self.outage_ends = self.outage_ends or now + timedelta(hours=1)
            self.failed_attempts += 1
            raise ApplicationError("Genesys recording list failed (503)", type="GenesysError")
        self.batches.append(scan.conversation_ids)
        deleted = [f"rec-{c}" for c in scan.conversation_ids if int(c[-3:]) % 2 == 0]
        return RetentionReport(run_id=scan.run_id, checked=len(scan.conversation_ids), deleted_retention=deleted,
                               kept=len(scan.conversation_ids) - len(deleted))

    @activity.defn(name="retention_save_report")
    async def retention_save_report(self, report: RetentionReport) -> None:
        self.saved = report


async def test_applies_every_conversation_once_in_batches_through_an_outage_and_stores_the_sum(env):
    genesys = RetentionPlatforms()
    activities = [genesys.retention_conversations, genesys.retention_apply, genesys.retention_save_report]
    async with worker(env, [RetentionWorkflow], activities) as tq:
        report = await env.client.execute_workflow(RetentionWorkflow.run, RetentionInput(), id=WORKFLOW_ID,
                                                   task_queue=tq)

    assert [len(b) for b in genesys.batches] == [100, 100, 50]
    assert [c for b in genesys.batches for c in b] == CONVERSATIONS  # none twice, none left out
    assert genesys.failed_attempts > 3  # the outage was real, and waited out
    assert report.checked == 250 and report.kept == 125 and len(report.deleted_retention) == 125
    assert report.deleted_retention == [f"rec-{c}" for c in CONVERSATIONS[::2]]
    assert report.run_id.startswith(f"{WORKFLOW_ID}/")
    assert genesys.saved == report
