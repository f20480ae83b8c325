"""POST /webhooks/genesys/events: the call-ended event from a real Genesys Cloud org.

Two senders (docs/deploy.md): the call-ended Web Services data action, run by the Architect
workflow a Process Automation trigger on `v2.detail.events.conversation.{id}.customer.end`
starts (the event's top-level fields as a JSON object; the integration's Basic credential),
and an Amazon EventBridge API destination (the EventBridge envelope, the event in
`detail.eventBody`; API-key header or Basic). Triggers carry no delivery retry guarantee;
EventBridge retries. Only voice calls start call logging; the workflow hydrates the call from
the Conversations API. Ids only in logs: the event's ani/dnis are phone numbers.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from callbridge.core import metrics
from callbridge.domain.genesys_events import (
    CustomerEndEvent,
    EventError,
    is_customer_end_topic,
    is_envelope,
    parse_envelope,
    parse_envelope_event,
    parse_event,
)
from callbridge.domain.models import CallLoggingInput
from callbridge.core.settings import Settings
from starter.auth import events_authorized
from starter.call_start import start_call_logging
from starter.temporal_link import TemporalLink
from starter.webhooks import PayloadError, _is_json, _no_duplicate_keys, _refuse, read_limited

log = structlog.get_logger("callbridge.events")

ENDPOINT = "events"  # the metrics' endpoint label

_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": CustomerEndEvent.model_json_schema(by_alias=True)}}}}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except PayloadError as exc:
        raise EventError(exc.fields) from None
    except (ValueError, RecursionError) as exc:
        raise EventError([{"field": "body", "message": f"malformed JSON: {type(exc).__name__}"}]) from None
    if not isinstance(data, dict):
        raise EventError([{"field": "body", "message": "expected a JSON object"}])
    return data


def read_delivery(body: bytes) -> tuple[str, CustomerEndEvent | None]:
    """(sender, event) — sender "data_action" or "eventbridge"; event None for another topic."""
    data = _json_object(body)
    if not is_envelope(data):
        return "data_action", parse_event(data)
    topic, event_body = parse_envelope(data)
    if not is_customer_end_topic(topic):
        return "eventbridge", None
    return "eventbridge", parse_envelope_event(event_body)


def build_router(settings: Settings, temporal: TemporalLink) -> APIRouter:
    router = APIRouter()

    @router.post("/webhooks/genesys/events", status_code=202, openapi_extra=_BODY_DOC)
    async def call_ended(request: Request) -> JSONResponse:
        metrics.WEBHOOKS_RECEIVED.labels(ENDPOINT).inc()
        if not events_authorized(request, settings):
            log.info("event refused", reason="unauthorized")
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "unauthorized").inc()
            return JSONResponse({"error": "unauthorized"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="callbridge-events"'})
        body = await read_limited(request, settings.webhook_max_body_bytes)
        if body is None:
            log.info("event refused", reason="too_large")
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "too_large").inc()
            return _refuse(413, "payload too large", limit=settings.webhook_max_body_bytes)
        if not _is_json(request.headers.get("content-type")):
            log.info("event refused", reason="unsupported_media_type")
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "unsupported_media_type").inc()
            return _refuse(415, "unsupported media type", expected="application/json")
        try:
            sender, event = read_delivery(body)
        except EventError as exc:
            log.info("event refused", reason="invalid_payload", fields=[f["field"] for f in exc.fields])
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "invalid_payload").inc()
            return _refuse(422, "invalid payload", fields=exc.fields)
        if event is None:
            log.info("event ignored", sender=sender, reason="topic")
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "ignored_topic").inc()
            return JSONResponse({"ignored": "topic is not a customer.end topic"}, status_code=200)
        if not event.is_voice:
            # Chats, emails, messages… end too: acknowledged (nothing to retry), counted, not logged.
            log.info("event ignored", sender=sender, reason="media_type", conversation_id=event.conversation_id)
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "ignored_media_type").inc()
            return JSONResponse({"ignored": f"mediaType {event.media_type[:40]} is not VOICE"}, status_code=200)
        inp = CallLoggingInput.for_conversation(
            event.conversation_id, settings.default_region, ended_at=event.ended_at, **settings.call_logging_policy)
        log.info("call ended event", sender=sender, conversation_id=event.conversation_id)
        return await start_call_logging(settings, temporal, event.conversation_id, inp, ENDPOINT)

    return router
