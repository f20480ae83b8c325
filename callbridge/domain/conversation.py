"""A call's details from the Conversations API (`GET /api/v2/conversations/{id}`, the SDK model
`Conversation`), as the CallEndedEvent the workflow logs. Pure.

Hydration reads: the customer participant (purpose customer inbound, external outbound) with
its ani/dnis and participant data (`attributes`, where the IVR puts `contact_id`); the last agent
(userId, name); the acd participant's queueId/queueName; the calls' recordingId; start and end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from callbridge.domain.models import CallEndedEvent

CUSTOMER_PURPOSES = ("customer", "external")
MAX_ATTRIBUTES = 100
MAX_KEY, MAX_VALUE = 128, 1024


class NotEnded(Exception):
    """The conversation shows no end yet (its customer leg is still live)."""


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) and value else None


def _number(address: Any) -> str:
    return (address or "").removeprefix("tel:").removeprefix("sip:")[:64] if isinstance(address, str) else ""


def _fitting(attributes: Any) -> dict[str, str]:
    """Participant data that fits the event's limits; the rest (never call logging's) is left out."""
    if not isinstance(attributes, dict):
        return {}
    kept = {k: v for k, v in sorted(attributes.items())
            if isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= MAX_KEY and len(v) <= MAX_VALUE}
    if "contact_id" in kept:  # the one call logging reads must survive the cut
        kept = {"contact_id": kept.pop("contact_id"), **kept}
    return dict(list(kept.items())[:MAX_ATTRIBUTES])


def _short(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) and value else None


def event_from_conversation(conv: dict[str, Any], ended_at: datetime | None = None) -> CallEndedEvent:
    """The call as the workflow logs it. `ended_at` (the event's eventTime) stands in for an end
    time the conversation doesn't show yet (the agent may still be in wrap-up)."""
    participants = conv.get("participants") or []
    customer = next((p for p in participants if p.get("purpose") in CUSTOMER_PURPOSES), None)
    if customer is None:
        raise ValueError("the conversation has no customer participant")
    agents = [p for p in participants if p.get("purpose") == "agent" and p.get("userId")]
    agent = agents[-1] if agents else None  # after a transfer, the last agent had the call
    acd = next((p for p in participants if p.get("purpose") == "acd" and p.get("queueId")), None)
    queue = acd or agent or {}
    calls = customer.get("calls") or []
    recording_id = next((c["recordingId"] for p in [customer, *participants] for c in p.get("calls") or []
                         if c.get("recordingId")), None)

    start = _time(conv.get("startTime")) or _time(customer.get("startTime"))
    end = _time(conv.get("endTime")) or _time(customer.get("endTime")) or ended_at
    if start is None:
        raise ValueError("the conversation has no startTime")
    if end is None:
        raise NotEnded(conv.get("id"))
    end = max(end, start)
    direction = (calls[0].get("direction") if calls else None) or (
        "inbound" if customer.get("purpose") == "customer" else "outbound")
    return CallEndedEvent(
        conversation_id=conv["id"],
        participant_id=_short(customer.get("id")),
        conversation_type="phone",
        caller_id=_number(customer.get("ani")),
        callee_id=_number(customer.get("dnis")) or None,
        direction=direction.upper(),
        start_time=start,
        end_time=end,
        duration_seconds=int(round((end - start).total_seconds())),
        recording_id=_short(recording_id),
        agent_id=_short(agent.get("userId")) if agent else None,
        agent_name=_short(agent.get("name")) if agent else None,
        queue_id=_short(queue.get("queueId")),
        queue_name=_short(queue.get("queueName")),
        interaction_id=conv["id"],
        attributes=_fitting(customer.get("attributes")),
    )
