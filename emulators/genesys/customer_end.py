"""The customer.end detail event of a simulated call, and what a real org does with it.

When a simulated call's customer leg has ended (simulator.py), the emulator builds the event
body Genesys publishes on `v2.detail.events.conversation.{id}.customer.end` (SDK model
CustomerEndDetailEventTopicCustomerEndEvent: eventTime in epoch ms, conversationId,
participantId, sessionId, disconnectType, mediaType, provider, direction, ani, dnis,
interactingDurationMs, divisionId; no agent, queue, times or recording) and:

 1. for every enabled Process Automation trigger on that topic whose matchCriteria all hold,
    waits the trigger's delayBySeconds, then runs its target workflow (architect.py) with the
    event's top-level primitives (dataFormat TopLevelPrimitives). One invocation, never retried:
    Genesys documents no retry for triggers. A trigger with dataFormat Json is recorded as an
    error (the emulator runs TopLevelPrimitives workflows only).
 2. when an EventBridge destination is configured, hands the event to eventbridge.py.

Each invocation is stored (kind trigger_invocation) and shown by GET /_emulator/calls/{id}
("triggers") and GET /_emulator/triggers/invocations.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from . import architect, eventbridge, flows
from .processautomation import CUSTOMER_END_TOPIC
from .processautomation import KIND as TRIGGER
from .wire import iso, new_id, now, parse_iso

log = logging.getLogger("emulators.genesys.customer_end")

INVOCATION = "trigger_invocation"


def _ms(text: str) -> int:
    return round(parse_iso(text).timestamp() * 1000)


def event_body(conv: dict[str, Any]) -> dict[str, Any]:
    """CustomerEndDetailEventTopicCustomerEndEvent for the stored, ended conversation."""
    customer = next(p for p in conv["participants"] if p["purpose"] in ("customer", "external"))
    agent = next((p for p in conv["participants"] if p["purpose"] == "agent"), None)
    end = customer.get("endTime") or conv["endTime"]
    body: dict[str, Any] = {
        "eventTime": _ms(end),
        "conversationId": conv["id"],
        "participantId": customer["id"],
        "sessionId": customer["callId"],
        "disconnectType": str(customer.get("disconnectType") or "endpoint").upper(),
        "mediaType": "VOICE",
        "provider": "Edge",
        "direction": customer["direction"].upper(),
        "ani": customer["ani"],
        "dnis": customer["dnis"],
        "divisionId": conv["divisionId"],
    }
    if agent and agent.get("connectedTime"):  # interacting: connected to an agent until the end
        body["interactingDurationMs"] = max(0, _ms(end) - _ms(agent["connectedTime"]))
    return body


def _path(event: dict[str, Any], json_path: str) -> tuple[bool, Any]:
    key = json_path.removeprefix("$.")
    return (key in event, event.get(key))


def matches(criteria: list[dict[str, Any]], event: dict[str, Any]) -> bool:
    """Every criterion holds (the MatchCriteria operators, on top-level attributes)."""
    for c in criteria:
        present, value = _path(event, c["jsonPath"])
        op, want, wants = c["operator"], c.get("value"), c.get("values") or []
        try:
            ok = {
                "Equal": lambda: present and value == want,
                "NotEqual": lambda: value != want,
                "In": lambda: present and value in wants,
                "NotIn": lambda: value not in wants,
                "Exists": lambda: present == (want is not False),
                "Contains": lambda: present and want in value,
                "GreaterThan": lambda: present and value > want,
                "GreaterThanOrEqual": lambda: present and value >= want,
                "LessThan": lambda: present and value < want,
                "LessThanOrEqual": lambda: present and value <= want,
                "All": lambda: present and all(w in value for w in wants),
                "Size": lambda: present and len(value) == want,
            }[op]()
        except TypeError:
            ok = False
        if not ok:
            return False
    return True


def _invoke(context, trigger: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    store = context.store
    record: dict[str, Any] = {"id": new_id(), "triggerId": trigger["id"], "triggerName": trigger["name"],
                              "conversationId": event["conversationId"], "startedAt": iso(now())}
    flow = flows.published(store, trigger["target"]["id"])
    data_format = (trigger["target"].get("workflowTargetSettings") or {}).get("dataFormat", "Json")
    if flow is None:
        record.update(state="error", error="the target workflow is not published")
    elif data_format != "TopLevelPrimitives":
        record.update(state="error", error=f"dataFormat {data_format}: the emulator runs TopLevelPrimitives only")
    else:
        try:
            record.update(architect.run(store, flow, event))
        except Exception as exc:  # a malformed published flow: the invocation fails, once
            log.exception("workflow %s crashed", flow["id"])
            record.update(state="error", error=f"{type(exc).__name__}: {exc}")
    record["endedAt"] = iso(now())
    store.put(INVOCATION, record["id"], record)
    return record


async def _invoke_later(context, trigger: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    if trigger.get("delayBySeconds"):
        await asyncio.sleep(trigger["delayBySeconds"])
    return await asyncio.to_thread(_invoke, context, trigger, event)


async def publish(context, conv: dict[str, Any]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Publish the call's customer.end: run the matching triggers (returns their invocations)
    and hand the event to EventBridge when configured (in the background)."""
    event = event_body(conv)
    topic = CUSTOMER_END_TOPIC.replace("{id}", conv["id"])
    eventbridge.submit(context, CUSTOMER_END_TOPIC, topic, event)
    triggers = [t for t in context.store.all(TRIGGER)
                if t["enabled"] and t["topicName"] == CUSTOMER_END_TOPIC and matches(t["matchCriteria"], event)]
    return list(await asyncio.gather(*(_invoke_later(context, t, event) for t in triggers)))


def invocations(store, conversation_id: str | None = None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    docs = store.all(INVOCATION) if conversation_id is None else store.containing(INVOCATION, conversation_id)
    found = [r for r in docs if conversation_id is None or r["conversationId"] == conversation_id]
    return sorted(found, key=lambda r: r["startedAt"])
