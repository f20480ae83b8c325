"""CallReconciliationWorkflow: logs the calls no call-ended event started a CallLoggingWorkflow
for (a trigger's delivery is not retried; a Temporal outage; a lost delivery).

Run every 5 minutes by a Temporal Schedule (overlap SKIP) with the fixed id below. One activity
queries Genesys for the calls that ended in the last 2 hours and starts `call-log-{id}` for
each one that has no workflow yet (activities/call_reconciliation.py); a retry of the activity is
harmless, since a workflow id is never started twice.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.call_reconciliation import CallReconciliationActivities, ReconciliationRequest, ReconciliationResult

WORKFLOW_ID = "call-reconciliation"
SCHEDULE_ID = "call-reconciliation"


@workflow.defn
class CallReconciliationWorkflow:
    @workflow.run
    async def run(self, request: ReconciliationRequest) -> ReconciliationResult:
        return await workflow.execute_activity_method(
            CallReconciliationActivities.reconcile_calls,
            request,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=2),
            # Bounded: the next scheduled run covers the same window again.
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=1),
                                     maximum_attempts=5),
        )
