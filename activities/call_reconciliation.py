"""Call reconciliation: start CallLoggingWorkflow for ended calls no call-ended event started.

A Process Automation trigger carries no delivery retry guarantee, and the starter answers 503
while Temporal is down: a call can be missed. This activity asks Genesys's analytics API for
the conversations that ended in a recent window and starts, for each, the same workflow the
event would have started, with the same id (`call-log-{conversationId}`). A workflow with that
id, running or closed, means the call is already handled: nothing is started twice.

The analytics record (AnalyticsConversationWithoutAttributes) picks the calls: a customer leg
on voice and an agent. The workflow is started with the conversation id only and hydrates the
call from the Conversations API like an event's (participant data such as the IVR's
`contact_id`, the recording, agent, queue, times), so a reconciled call is logged the same.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio import activity
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.domain.models import CallEndedEvent, CallLoggingInput, ReconciliationRequest, ReconciliationResult  # noqa: F401  (re-exported)
from callbridge.core.settings import Settings

log = structlog.get_logger("callbridge.reconciliation")

QUERY_PATH = "/api/v2/analytics/conversations/details/query"
PAGE_SIZE = 100  # the details query's largest page
MAX_RESULTS = 100_000  # "Pagination may not exceed 100000 results."
CUSTOMER_PURPOSES = ("customer", "external")
START_CONCURRENCY = 16  # workflow starts in flight at once


class ReconciliationSettings(BaseSettings):
    """CALLBRIDGE_RECONCILIATION_* (kept apart from Settings, read by the schedule)."""

    model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_RECONCILIATION_", env_file=".env", extra="ignore")

    every_seconds: int = Field(300, ge=30)
    # How far back a run looks: an outage (or a lost delivery) up to this long is covered.
    lookback_seconds: int = Field(2 * 3600, ge=60, le=7 * 24 * 3600)
    # Calls that ended more recently are left to their call-ended event (still being delivered).
    settle_seconds: int = Field(120, ge=0)
    # Created paused (the test stack: suites that count workflows must not see scheduled starts).
    schedule_paused: bool = False




def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def details_query(start: datetime, end: datetime, page_number: int) -> dict[str, Any]:
    """Ended voice conversations that started in [start, end), oldest end first."""
    return {
        "interval": f"{_iso(start)}/{_iso(end)}",
        "conversationFilters": [{"type": "and", "predicates": [
            {"type": "dimension", "dimension": "conversationEnd", "operator": "exists"}]}],
        "segmentFilters": [{"type": "and", "predicates": [
            {"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": "voice"}]}],
        "order": "asc",
        "orderBy": "conversationEnd",
        "paging": {"pageSize": PAGE_SIZE, "pageNumber": page_number},
    }


def _number(address: str | None) -> str:
    return (address or "").removeprefix("tel:").removeprefix("sip:")


def event_from_details(record: dict[str, Any]) -> CallEndedEvent | None:
    """The webhook's CallEndedEvent from an analytics conversation, or None when the record is not
    a call the webhook would report (no customer leg or no agent)."""
    participants = record.get("participants") or []
    customer = next((p for p in participants if p.get("purpose") in CUSTOMER_PURPOSES), None)
    agents = [p for p in participants if p.get("purpose") == "agent" and p.get("userId")]
    if customer is None or not agents:
        return None
    voice = [s for s in customer.get("sessions") or [] if s.get("mediaType") == "voice"]
    if not voice:
        return None
    session = voice[0]
    agent = agents[-1]  # the last agent on the call (after any transfer) is the one who had it
    acd = next((p for p in participants if p.get("purpose") == "acd"), None)
    queue_id = None
    for p in ([acd] if acd else []) + [agent]:
        for s in p.get("sessions") or []:
            queue_id = queue_id or next((g["queueId"] for g in s.get("segments") or [] if g.get("queueId")), None)
    start = datetime.fromisoformat(record["conversationStart"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(record["conversationEnd"].replace("Z", "+00:00"))
    direction = record.get("originatingDirection") or session.get("direction") or "inbound"
    return CallEndedEvent(
        conversation_id=record["conversationId"],
        participant_id=customer.get("participantId"),
        conversation_type="phone",  # the webhook's name for a voice conversation
        caller_id=_number(session.get("ani")),
        callee_id=_number(session.get("dnis")) or None,
        direction=direction.upper(),
        start_time=start,
        end_time=end,
        duration_seconds=max(0, int(round((end - start).total_seconds()))),
        agent_id=agent["userId"],
        agent_name=agent.get("participantName"),
        queue_id=queue_id,
        queue_name=acd.get("participantName") if acd else None,
        interaction_id=record["conversationId"],
    )


class CallReconciliationActivities:
    def __init__(self, genesys: GenesysConnection, settings: Settings) -> None:
        self._genesys = genesys
        self._settings = settings

    async def _page(self, start: datetime, end: datetime, page_number: int) -> dict[str, Any]:
        resp = await self._genesys.request("POST", QUERY_PATH, json=details_query(start, end, page_number))
        if resp.status_code >= 400:
            raise ApplicationError(
                f"Genesys conversation details query failed ({resp.status_code})", type="GenesysError",
                # A 400 is a query Genesys refuses: retrying won't change it.
                non_retryable=resp.status_code < 500 and resp.status_code not in (401, 429))
        return resp.json()

    @activity.defn
    async def reconcile_calls(self, request: ReconciliationRequest) -> ReconciliationResult:
        from callbridge.domain.workflow_ids import CALL_LOGGING_WORKFLOW, CONVERSATION_ID, call_log_id

        s = self._settings
        client = activity.client()
        now = datetime.now(timezone.utc)
        start = now - timedelta(seconds=request.lookback_seconds)
        settled_before = now - timedelta(seconds=request.settle_seconds)
        result = ReconciliationResult()
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def start_logging(event: CallEndedEvent) -> tuple[CallEndedEvent, bool]:
            inp = CallLoggingInput.for_conversation(
                event.conversation_id, s.default_region, ended_at=event.end_time, **s.call_logging_policy)
            async with gate:
                try:
                    await client.start_workflow(
                        CALL_LOGGING_WORKFLOW, inp, id=call_log_id(event.conversation_id),
                        task_queue=s.temporal_task_queue,
                        # Any earlier run, even a failed one, means the call was handled: a
                        # redelivered event may retry a failed one, reconciliation doesn't.
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        search_attributes=TypedSearchAttributes(
                            [SearchAttributePair(CONVERSATION_ID, event.conversation_id)]),
                    )
                except WorkflowAlreadyStartedError:
                    return event, False
            return event, True

        page_number = 1
        while page_number * PAGE_SIZE <= MAX_RESULTS:
            page = await self._page(start, now, page_number)
            records = page.get("conversations") or []  # absent when nothing (more) matched
            starts = []
            for record in records:
                result.ended += 1
                try:
                    event = event_from_details(record)
                except (KeyError, ValueError, ValidationError):
                    event = None
                if event is None:
                    result.skipped += 1
                elif event.end_time > settled_before:
                    result.too_recent += 1
                else:
                    starts.append(start_logging(event))
            # A page's starts go out together (bounded): mostly "already started" answers.
            for event, started in await asyncio.gather(*starts):
                if not started:
                    result.already_handled += 1
                    continue
                result.started += 1
                if len(result.started_conversation_ids) < 100:
                    result.started_conversation_ids.append(event.conversation_id)
                log.info("missed call reconciled", workflow_id=call_log_id(event.conversation_id))
            activity.heartbeat(page_number)
            total = page.get("totalHits") or 0
            if not records or page_number * PAGE_SIZE >= total:
                break
            page_number += 1
        log.info("call reconciliation done", **result.model_dump(exclude={"started_conversation_ids"}))
        return result
