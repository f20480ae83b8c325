"""CallerIndexRefreshWorkflow: keeps the screen pop's caller-ID index current.

Run every minute by a Temporal Schedule (overlap SKIP) with the fixed id below, so two
refreshes never run at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.caller_index import CallerIndexActivities
    from callbridge.domain.models import IndexRefreshRequest, IndexRefreshResult

WORKFLOW_ID = "caller-index-refresh"
SCHEDULE_ID = "caller-index-refresh-every-minute"


@workflow.defn
class CallerIndexRefreshWorkflow:
    @workflow.run
    async def run(self, request: IndexRefreshRequest) -> IndexRefreshResult:
        return await workflow.execute_activity_method(
            CallerIndexActivities.refresh_caller_index,
            request,
            start_to_close_timeout=timedelta(hours=2) if request.full else timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1)),
        )
