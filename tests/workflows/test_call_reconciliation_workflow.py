"""CallReconciliationWorkflow (every 5 minutes, a Temporal Schedule): a Genesys outage is retried
a few times, then the run gives up, since the next scheduled run covers the same window; a
shorter one is waited out. Genesys is a test activity under the real activity name."""

from __future__ import annotations

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.call_reconciliation import ReconciliationRequest, ReconciliationResult
from tests.workflows.conftest import worker
from workflows.call_reconciliation import WORKFLOW_ID, CallReconciliationWorkflow


class Analytics:
    """Genesys's analytics API, failing (5xx) for its first `failures` queries."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    @activity.defn(name="reconcile_calls")
    async def reconcile_calls(self, request: ReconciliationRequest) -> ReconciliationResult:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ApplicationError("Genesys conversation details query failed (503)", type="GenesysError")
        return ReconciliationResult(ended=3, started=1, already_handled=2, started_conversation_ids=["conv-rec-9"])


async def run(env, analytics: Analytics) -> ReconciliationResult:
    async with worker(env, [CallReconciliationWorkflow], [analytics.reconcile_calls]) as tq:
        return await env.client.execute_workflow(CallReconciliationWorkflow.run, ReconciliationRequest(),
                                                 id=WORKFLOW_ID, task_queue=tq)


async def test_a_short_genesys_outage_is_waited_out(env):
    analytics = Analytics(failures=3)
    result = await run(env, analytics)
    assert analytics.attempts == 4 and result.started_conversation_ids == ["conv-rec-9"]


async def test_a_long_genesys_outage_ends_the_run_after_five_attempts_for_the_next_one_to_cover(env):
    analytics = Analytics(failures=1000)
    with pytest.raises(WorkflowFailureError):
        await run(env, analytics)
    assert analytics.attempts == 5
