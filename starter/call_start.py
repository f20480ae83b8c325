"""Starting `call-log-{conversationId}`: the one start every intake route shares.

One workflow per call whatever the mix and number of deliveries: the id is the conversation's,
and a closed run admits a new one only if it failed (ALLOW_DUPLICATE_FAILED_ONLY).
"""

from __future__ import annotations

import asyncio

import structlog
from fastapi.responses import JSONResponse
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from callbridge.core import metrics
from callbridge.domain.models import CallLoggingInput
from callbridge.core.settings import Settings
from starter.temporal_link import TemporalLink, TemporalUnavailable
from workflows.call_logging import CONVERSATION_ID, CallLoggingWorkflow, workflow_id

log = structlog.get_logger("callbridge.webhooks")

# Connecting and starting together: a sender waiting on us gets an answer in a few seconds,
# 503 rather than a hang while the SDK retries an unreachable server (~6 s).
START_BUDGET_SECONDS = 3.0
_UNAVAILABLE_CODES = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}


async def start_call_logging(settings: Settings, temporal: TemporalLink, conversation_id: str,
                             inp: CallLoggingInput, endpoint: str) -> JSONResponse:
    """202 started, 200 duplicate, 503 + Retry-After when Temporal can't be reached."""
    wid = workflow_id(conversation_id)

    async def start() -> None:
        client = await temporal.client()
        await client.start_workflow(
            CallLoggingWorkflow.run, inp, id=wid, task_queue=settings.temporal_task_queue,
            # A logged call is never logged again; a failed one may be retried by redelivery.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            search_attributes=TypedSearchAttributes([SearchAttributePair(CONVERSATION_ID, conversation_id)]),
        )

    try:
        # If the start did land despite a timeout, a redelivery gets 200 duplicate.
        await asyncio.wait_for(start(), START_BUDGET_SECONDS)
    except WorkflowAlreadyStartedError:
        log.info("webhook redelivered", workflow_id=wid)
        metrics.WORKFLOW_STARTS.labels(CallLoggingWorkflow.__name__, "duplicate").inc()
        return JSONResponse({"workflowId": wid, "duplicate": True}, status_code=200)
    except (TemporalUnavailable, asyncio.TimeoutError):
        return _unavailable(wid, endpoint)
    except RPCError as exc:
        if exc.status in _UNAVAILABLE_CODES:
            return _unavailable(wid, endpoint)
        raise
    log.info("call logging started", workflow_id=wid)
    metrics.WORKFLOW_STARTS.labels(CallLoggingWorkflow.__name__, "started").inc()
    return JSONResponse({"workflowId": wid}, status_code=202)


def _unavailable(wid: str, endpoint: str) -> JSONResponse:
    # Refused now rather than accepted and dropped: a sender that retries (EventBridge does,
    # a relay may) delivers again; a trigger's one try is picked up by the reconciliation.
    log.warning("temporal unavailable", workflow_id=wid)
    metrics.WEBHOOKS_REJECTED.labels(endpoint, "temporal_unavailable").inc()
    metrics.WORKFLOW_STARTS.labels(CallLoggingWorkflow.__name__, "unavailable").inc()
    return JSONResponse({"error": "temporarily unavailable"}, status_code=503, headers={"Retry-After": "5"})
