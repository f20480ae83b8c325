"""POST /webhooks/genesys/conversation-ended: verify, validate, start CallLoggingWorkflow.

Genesys Cloud sends no such webhook and signs nothing: this route is the shape a relay of
your own can send (the whole call, HMAC-signed; callbridge.domain.signature). What Genesys sends is
the call-ended event (starter/events.py). Nothing is started unless the signature, the
timestamp and every field check out; the signature is checked over the raw bytes before any
parsing.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from callbridge.core import metrics

from callbridge.domain import signature
from callbridge.domain.models import CallEndedEvent, CallLoggingInput
from callbridge.core.settings import Settings
from starter.call_start import start_call_logging
from starter.temporal_link import TemporalLink

log = structlog.get_logger("callbridge.webhooks")

ENDPOINT = "conversation-ended"  # the metrics' endpoint label


class PayloadError(ValueError):
    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("invalid payload")
        self.fields = fields


_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": CallEndedEvent.model_json_schema(by_alias=True)}}}}


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json"


def _refuse(status: int, error: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, **extra}, status_code=status)


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


_EPOCH = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*$")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise PayloadError([{"field": key, "message": "duplicate key"}])
        seen[key] = value
    return seen


def parse_event(body: bytes, now: datetime, max_skew: timedelta) -> CallEndedEvent:
    try:
        # UTF-8 only (RFC 8259): json.loads(bytes) would also guess UTF-16/32.
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise PayloadError([{"field": "body", "message": f"malformed JSON: {type(exc).__name__}"}]) from None
    if not isinstance(data, dict):
        raise PayloadError([{"field": "body", "message": "expected a JSON object"}])
    # The relay sends ISO 8601; pydantic would also read 1700000000 or "1700000000" as a time.
    numeric = [{"field": key, "message": "expected an ISO 8601 timestamp"} for key in ("startTime", "endTime")
               if isinstance(data.get(key), (int, float)) or (isinstance(data.get(key), str) and _EPOCH.match(data[key]))]
    if numeric:
        raise PayloadError(numeric)
    try:
        event = CallEndedEvent.model_validate(data)
    except ValidationError as exc:
        raise PayloadError([
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]) from None
    if event.end_time > now + max_skew:
        raise PayloadError([{"field": "endTime", "message": "is in the future"}])
    return event


def build_router(settings: Settings, temporal: TemporalLink) -> APIRouter:
    router = APIRouter()
    secret = settings.webhook_secret.get_secret_value()

    # The body is read raw (the signature covers the bytes), so FastAPI can't infer its schema:
    # documented here for API clients and for the schema-driven fuzz test.
    @router.post("/webhooks/genesys/conversation-ended", status_code=202, openapi_extra=_BODY_DOC)
    async def conversation_ended(request: Request) -> JSONResponse:
        metrics.WEBHOOKS_RECEIVED.labels(ENDPOINT).inc()
        body = await read_limited(request, settings.webhook_max_body_bytes)
        if body is None:
            log.info("webhook refused", reason="too_large")
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "too_large").inc()
            return _refuse(413, "payload too large", limit=settings.webhook_max_body_bytes)
        try:
            signature.verify(
                secret,
                request.headers.get(signature.SIGNATURE_HEADER),
                request.headers.get(signature.TIMESTAMP_HEADER),
                body,
                now=time.time(),
                max_skew_seconds=settings.webhook_max_skew_seconds,
            )
        except signature.SignatureError as exc:
            log.info("webhook refused", reason=str(exc))
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, str(exc).replace(" ", "_")).inc()  # a closed set
            return _refuse(401, "unauthorized", reason=str(exc))
        if not _is_json(request.headers.get("content-type")):
            # The relay sends JSON: anything else is not a delivery we understand.
            log.info("webhook refused", reason="unsupported_media_type")
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "unsupported_media_type").inc()
            return _refuse(415, "unsupported media type", expected="application/json")
        try:
            event = parse_event(
                body, datetime.now(timezone.utc), timedelta(seconds=settings.webhook_max_skew_seconds)
            )
        except PayloadError as exc:
            log.info("webhook refused", reason="invalid_payload", fields=[f["field"] for f in exc.fields])
            metrics.WEBHOOKS_REJECTED.labels(ENDPOINT, "invalid_payload").inc()
            return _refuse(422, "invalid payload", fields=exc.fields)

        inp = CallLoggingInput.for_event(event, settings.default_region, **settings.call_logging_policy)
        return await start_call_logging(settings, temporal, event.conversation_id, inp, ENDPOINT)

    return router

