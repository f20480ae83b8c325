"""Analytics: POST /api/v2/analytics/conversations/details/query over the stored conversations.

The body is a ConversationQuery; the answer an AnalyticsConversationQueryResponse
(`conversations` of AnalyticsConversationWithoutAttributes, `totalHits`; no `conversations`
key when nothing matched). A conversation matches the `interval` when it started inside it.

Supported, as the API defines them: `interval` (required, `start/end` ISO-8601),
`conversationFilters` and `segmentFilters` with `type` and/or and `predicates` of
`type: dimension` (conversation dimensions conversationEnd, conversationId,
originatingDirection, divisionId; segment dimensions mediaType, purpose, direction, userId,
queueId; operators matches, exists, notExists), `order` (asc, desc), `orderBy`
(conversationStart, conversationEnd), `paging` (pageSize 1-100, default 25; at most 100,000
results reachable). Anything else the model has (clauses, metric and property predicates,
evaluation/survey/resolution filters, aggregations) is refused with a 400 ErrorBody, so a
client never mistakes an ignored filter for an applied one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from .context import ctx
from .errors import bad_request
from .wire import parse_iso

router = APIRouter()

KIND = "conversation"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_RESULTS = 100_000
QUERY_FIELDS = {"conversationFilters", "segmentFilters", "evaluationFilters", "surveyFilters", "resolutionFilters",
                "order", "orderBy", "interval", "aggregations", "paging"}
UNSUPPORTED = ("evaluationFilters", "surveyFilters", "resolutionFilters", "aggregations")
CONVERSATION_DIMENSIONS = {"conversationEnd", "conversationId", "originatingDirection", "divisionId"}
SEGMENT_DIMENSIONS = {"mediaType", "purpose", "direction", "userId", "queueId"}
OPERATORS = {"matches", "exists", "notExists"}


# --- rendering: AnalyticsConversationWithoutAttributes ----------------------------------------


def _segments(p: dict[str, Any]) -> list[dict[str, Any]]:
    """An agent leg alerts, then interacts; every other leg interacts from its start."""
    segments: list[dict[str, Any]] = []

    def segment(start: str, end: str | None, kind: str, disconnect: str | None) -> None:
        item: dict[str, Any] = {"segmentStart": start, "segmentType": kind, "conference": False}
        if end:
            item["segmentEnd"] = end
            if disconnect:
                item["disconnectType"] = disconnect
        if p.get("queueId"):
            item["queueId"] = p["queueId"]
        segments.append(item)

    if p["purpose"] == "agent":
        alert_end = p.get("connectedTime") or p.get("endTime")
        segment(p.get("startAlertingTime") or p["startTime"], alert_end, "alert",
                None if p.get("connectedTime") else p.get("disconnectType"))
        if p.get("connectedTime"):
            segment(p["connectedTime"], p.get("endTime"), "interact", p.get("disconnectType"))
    else:
        segment(p.get("connectedTime") or p["startTime"], p.get("endTime"), "interact", p.get("disconnectType"))
    return segments


def _session(p: dict[str, Any]) -> dict[str, Any]:
    session: dict[str, Any] = {
        "sessionId": p["callId"],
        "mediaType": "voice",
        "direction": p["direction"],
        "ani": p["ani"],
        "dnis": p["dnis"],
        "addressFrom": p["ani"],
        "addressTo": p["dnis"],
        "provider": "Edge",
        "recording": bool(p.get("recordingId")),
        "segments": _segments(p),
    }
    return session


def _participant(p: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"participantId": p["id"], "purpose": p["purpose"], "sessions": [_session(p)]}
    if p.get("name"):
        item["participantName"] = p["name"]  # the queue's name on the acd leg, the agent's on theirs
    if p.get("userId"):
        item["userId"] = p["userId"]
    return item


def render(conv: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "conversationId": conv["id"],
        "conversationStart": conv["startTime"],
        "originatingDirection": conv["direction"],
        "conversationInitiator": "customer" if conv["direction"] == "inbound" else "agent",
        "customerParticipation": True,
        "divisionIds": [conv["divisionId"]] if conv.get("divisionId") else [],
        "participants": [_participant(p) for p in conv["participants"]],
    }
    if conv.get("endTime"):
        out["conversationEnd"] = conv["endTime"]
    return out


# --- the query -------------------------------------------------------------------------------


def _interval(raw: Any) -> tuple[datetime, datetime]:
    if not isinstance(raw, str) or raw.count("/") != 1:
        raise bad_request("interval is required: an ISO-8601 interval like 2024-01-01T00:00:00Z/2024-01-02T00:00:00Z")
    start_text, end_text = raw.split("/")
    try:
        start, end = parse_iso(start_text), parse_iso(end_text)
    except ValueError:
        raise bad_request(f"Invalid interval {raw!r}") from None
    if end <= start:
        raise bad_request("The interval's end must be after its start")
    return start, end


def _predicates(filters: Any, dimensions: set[str], name: str) -> list[tuple[str, list[dict[str, Any]]]]:
    if filters is None:
        return []
    if not isinstance(filters, list):
        raise bad_request(f"{name} must be a list")
    out = []
    for f in filters:
        if not isinstance(f, dict) or f.get("type") not in ("and", "or"):
            raise bad_request(f"{name}: every filter needs a type of and/or")
        if f.get("clauses"):
            raise bad_request(f"{name}: clauses are not supported by this emulator")
        predicates = f.get("predicates") or []
        for p in predicates:
            if not isinstance(p, dict) or p.get("type", "dimension") != "dimension":
                raise bad_request(f"{name}: only dimension predicates are supported by this emulator")
            if p.get("dimension") not in dimensions:
                raise bad_request(f"{name}: dimension {p.get('dimension')!r} is not supported by this emulator")
            operator = p.get("operator", "matches")
            if operator not in OPERATORS:
                raise bad_request(f"{name}: invalid operator {operator!r}")
            if operator == "matches" and not isinstance(p.get("value"), str):
                raise bad_request(f"{name}: a matches predicate needs a value")
        out.append((f["type"], predicates))
    return out


def _test(value: Any, predicate: dict[str, Any]) -> bool:
    operator = predicate.get("operator", "matches")
    present = value not in (None, "", [])
    if operator == "exists":
        return present
    if operator == "notExists":
        return not present
    if isinstance(value, list):
        return predicate["value"] in value
    return value == predicate["value"]


def _passes(filters: list[tuple[str, list[dict[str, Any]]]], lookup) -> bool:  # type: ignore[no-untyped-def]
    for kind, predicates in filters:
        results = [lookup(p) for p in predicates]
        if results and not (all(results) if kind == "and" else any(results)):
            return False
    return True


def _segment_values(record: dict[str, Any], dimension: str) -> list[Any]:
    values = []
    for participant in record["participants"]:
        for session in participant["sessions"]:
            for segment in session["segments"]:
                if dimension in segment:
                    values.append(segment[dimension])
            if dimension in session:
                values.append(session[dimension])
        if dimension in participant:
            values.append(participant[dimension])
    return values


def _segment_test(record: dict[str, Any], predicate: dict[str, Any]) -> bool:
    values = _segment_values(record, predicate["dimension"])
    operator = predicate.get("operator", "matches")
    if operator == "notExists":
        return not values
    if operator == "exists":
        return bool(values)
    return predicate["value"] in values


def query(store, body: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    if not isinstance(body, dict):
        raise bad_request("The request could not be understood by the server due to malformed syntax.")
    unknown = sorted(set(body) - QUERY_FIELDS)
    if unknown:
        raise bad_request(f"Unrecognized field(s) {unknown}")
    for key in UNSUPPORTED:
        if body.get(key):
            raise bad_request(f"{key} are not supported by this emulator")
    start, end = _interval(body.get("interval"))
    conversation_filters = _predicates(body.get("conversationFilters"), CONVERSATION_DIMENSIONS, "conversationFilters")
    segment_filters = _predicates(body.get("segmentFilters"), SEGMENT_DIMENSIONS, "segmentFilters")
    order = body.get("order") or "asc"
    order_by = body.get("orderBy") or "conversationStart"
    if order not in ("asc", "desc", "unordered"):
        raise bad_request(f"Invalid order {order!r}")
    if order_by not in ("conversationStart", "conversationEnd"):
        raise bad_request(f"orderBy {order_by!r} is not supported by this emulator")
    paging = body.get("paging") or {}
    if not isinstance(paging, dict):
        raise bad_request("paging must be an object")
    page_size, page_number = paging.get("pageSize", DEFAULT_PAGE_SIZE), paging.get("pageNumber", 1)
    for name, value in (("pageSize", page_size), ("pageNumber", page_number)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad_request(f"{name} must be a positive integer")
    if page_size > MAX_PAGE_SIZE:
        raise bad_request(f"pageSize may not exceed {MAX_PAGE_SIZE}")
    if page_size * page_number > MAX_RESULTS:
        raise bad_request(f"Pagination may not exceed {MAX_RESULTS} results.")

    matched = []
    for conv in store.iter(KIND):
        if not start <= parse_iso(conv["startTime"]) < end:
            continue
        record = render(conv)
        conv_values = {"conversationEnd": record.get("conversationEnd"), "conversationId": record["conversationId"],
                       "originatingDirection": record["originatingDirection"], "divisionId": record["divisionIds"]}
        if not _passes(conversation_filters, lambda p: _test(conv_values[p["dimension"]], p)):
            continue
        if not _passes(segment_filters, lambda p: _segment_test(record, p)):
            continue
        matched.append(record)
    if order != "unordered":
        # Conversations still going have no end: they sort last either way.
        ended = sorted((r for r in matched if r.get(order_by)), key=lambda r: parse_iso(r[order_by]),
                       reverse=order == "desc")
        matched = ended + [r for r in matched if not r.get(order_by)]
    page = matched[(page_number - 1) * page_size:page_number * page_size]
    out: dict[str, Any] = {"totalHits": len(matched)}
    if page:
        out["conversations"] = page
    return out


@router.post("/api/v2/analytics/conversations/details/query")
async def post_conversation_details_query(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request could not be understood by the server due to malformed syntax.")
    return query(ctx(request).store, body)
