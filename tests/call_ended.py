"""The bodies real Genesys sends when a call ends (the contract of issue #14), for the tests and
the bench: the call-ended data action's JSON object and the EventBridge envelope around the event.

The keys are the SDK model CustomerEndDetailEventTopicCustomerEndEvent's attribute_map names.
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx

EVENTS = "/webhooks/genesys/events"
# The settings' defaults (CALLBRIDGE_EVENTS_*), which the test stack keeps.
BASIC = ("genesys-call-ended", "callbridge-demo-events")
API_KEY_HEADER = "x-api-key"
API_KEY = "callbridge-demo-events-api-key"
ORG_ID = "6f1c2b4e-2a8e-4b7e-9d4b-3c1f0e5a7d21"


def customer_end_event(conversation_id: str, *, participant_id: str | None = None, media_type: str = "VOICE",
                       ani: str = "tel:+15125550100", dnis: str = "tel:+18005550100",
                       direction: str = "INBOUND") -> dict[str, Any]:
    """The event's top-level fields as the data action's requestTemplate renders them."""
    return {
        "eventTime": int(time.time() * 1000),
        "conversationId": conversation_id,
        "participantId": participant_id or str(uuid.uuid4()),
        "sessionId": str(uuid.uuid4()),
        "disconnectType": "ENDPOINT",
        "mediaType": media_type,
        "direction": direction,
        "ani": ani,
        "dnis": dnis,
        "interactingDurationMs": 61000,
        "divisionId": str(uuid.uuid4()),
    }


def eventbridge_envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The event as an EventBridge API destination delivers it."""
    topic = f"v2.detail.events.conversation.{event.get('conversationId')}.customer.end"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": topic,
        "source": f"aws.partner/genesys.com/cloud/{ORG_ID}/callbridge",
        "account": "123456789012",
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {"topicName": topic, "version": "2", "eventBody": event,
                   "metadata": {"CorrelationId": str(uuid.uuid4())}},
    }


def basic_header(username: str = BASIC[0], password: str = BASIC[1]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def deliver_data_action(starter_url: str, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
    """What the call-ended data action sends: the event's fields, HTTP Basic."""
    return httpx.post(f"{starter_url}{EVENTS}", json=event, headers=basic_header(), timeout=30, **kwargs)


def deliver_eventbridge(starter_url: str, event: dict[str, Any]) -> httpx.Response:
    """What an EventBridge API destination with an API-key connection sends."""
    return httpx.post(f"{starter_url}{EVENTS}", json=eventbridge_envelope(event),
                      headers={API_KEY_HEADER: API_KEY}, timeout=30)
