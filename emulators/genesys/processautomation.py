"""Process Automation triggers: /api/v2/processautomation/triggers (SDK ProcessAutomationApi).

  POST   CreateTriggerRequest -> Trigger
  GET    TriggerEntityListing (topicName, enabled, hasDelayBy filters; pageSize, cursor `after`)
  GET/PUT/DELETE /{triggerId}   (PUT: UpdateTriggerRequest with the current version)

Rules from the SDK's model docs (models/trigger.py): eventTTLSeconds, when set, at least 10;
delayBySeconds 60 to 900; only one of the two. target.type is Workflow, dataFormat Json or
TopLevelPrimitives; the target must be a published workflow. The emulator publishes one topic,
v2.detail.events.conversation.{id}.customer.end (customer_end.py): a trigger on any other topic
is a 400 here, so a test can't wait for an event that would never come.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from . import flows
from .context import ctx, stored
from .errors import GenesysError, bad_request
from .wire import new_id

router = APIRouter()

KIND = "trigger"
CUSTOMER_END_TOPIC = "v2.detail.events.conversation.{id}.customer.end"
TOPICS = {CUSTOMER_END_TOPIC}
OPERATORS = {"GreaterThanOrEqual", "LessThanOrEqual", "Equal", "NotEqual", "LessThan", "GreaterThan",
             "NotIn", "In", "Contains", "All", "Exists", "Size"}
DATA_FORMATS = {"Json", "TopLevelPrimitives"}
FIELDS = {"name", "topicName", "target", "matchCriteria", "enabled", "eventTTLSeconds", "delayBySeconds",
          "description"}
_lock = threading.Lock()


def render(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc[k] for k in ("id", "name", "topicName", "target", "version", "enabled", "matchCriteria")}
    for key in ("eventTTLSeconds", "delayBySeconds", "description"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    out["selfUri"] = f"/api/v2/processautomation/triggers/{doc['id']}"
    return out


def _int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise bad_request(f"{key} must be an integer", "invalid.value")
    return value


def validate(store, body: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The trigger fields of a create/update body, checked; GenesysError 400 naming the field."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    for key in ("name", "topicName"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise bad_request(f"{key} is required", "invalid.value")
    if body["topicName"] not in TOPICS:
        raise bad_request(f"topicName {body['topicName']!r}: the emulator publishes only {sorted(TOPICS)}",
                          "invalid.value")
    if not isinstance(body.get("enabled"), bool):
        raise bad_request("enabled is required (true or false)", "invalid.value")
    target = body.get("target")
    if not isinstance(target, dict) or target.get("type") != "Workflow" or not isinstance(target.get("id"), str):
        raise bad_request("target must be {\"type\": \"Workflow\", \"id\": <workflow id>}", "invalid.value")
    flow = flows.published(store, target["id"])
    if flow is None or flow["type"] != "WORKFLOW":
        raise bad_request(f"target.id {target['id']} is not a published workflow", "invalid.value")
    settings = target.get("workflowTargetSettings")
    if settings is not None and (not isinstance(settings, dict) or settings.get("dataFormat") not in DATA_FORMATS):
        raise bad_request(f"target.workflowTargetSettings.dataFormat must be one of {sorted(DATA_FORMATS)}",
                          "invalid.value")
    criteria = body.get("matchCriteria") or []
    if not isinstance(criteria, list) or not all(
            isinstance(c, dict) and isinstance(c.get("jsonPath"), str) and c.get("operator") in OPERATORS
            for c in criteria):
        raise bad_request(f"matchCriteria: each needs jsonPath and an operator in {sorted(OPERATORS)}",
                          "invalid.value")
    ttl, delay = _int(body, "eventTTLSeconds"), _int(body, "delayBySeconds")
    if ttl is not None and delay is not None:
        raise bad_request("Only one of eventTTLSeconds or delayBySeconds can be set", "invalid.value")
    if ttl is not None and ttl < 10:
        raise bad_request("eventTTLSeconds must be at least 10", "invalid.value")
    if delay is not None and not 60 <= delay <= 900:
        raise bad_request("delayBySeconds must be in the range of 60 to 900", "invalid.value")
    out = {k: body.get(k) for k in FIELDS}
    out["matchCriteria"] = criteria
    out["target"] = {k: target[k] for k in ("type", "id", "workflowTargetSettings") if target.get(k) is not None}
    return out


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_request("The request body is not valid JSON") from None


@router.post("/api/v2/processautomation/triggers")
async def post_trigger(request: Request) -> dict[str, Any]:
    store = ctx(request).store
    doc = validate(store, await _json(request))
    doc.update(id=new_id(), version=1)
    store.put(KIND, doc["id"], doc)
    return render(doc)


@router.get("/api/v2/processautomation/triggers")
def get_triggers(request: Request, topicName: str | None = Query(None), enabled: bool | None = Query(None),
                 hasDelayBy: bool | None = Query(None), pageSize: int = Query(25),
                 after: str | None = Query(None)) -> dict[str, Any]:
    if not 1 <= pageSize <= 500:
        raise bad_request("pageSize must be between 1 and 500", "invalid.value")
    docs = sorted(ctx(request).store.all(KIND), key=lambda d: d["id"])
    if topicName is not None:
        docs = [d for d in docs if d["topicName"] == topicName]
    if enabled is not None:
        docs = [d for d in docs if d["enabled"] is enabled]
    if hasDelayBy is not None:
        docs = [d for d in docs if (d.get("delayBySeconds") is not None) is hasDelayBy]
    if after is not None:
        docs = [d for d in docs if d["id"] > after]
    page = docs[:pageSize]
    listing: dict[str, Any] = {"entities": [render(d) for d in page],
                               "selfUri": "/api/v2/processautomation/triggers"}
    if len(docs) > pageSize:
        listing["nextUri"] = f"/api/v2/processautomation/triggers?pageSize={pageSize}&after={page[-1]['id']}"
    return listing


def _trigger(request: Request, trigger_id: str) -> dict[str, Any]:
    return stored(request, KIND, trigger_id, "Trigger")


@router.get("/api/v2/processautomation/triggers/{triggerId}")
def get_trigger(request: Request, triggerId: str) -> dict[str, Any]:
    return render(_trigger(request, triggerId))


@router.put("/api/v2/processautomation/triggers/{triggerId}")
async def put_trigger(request: Request, triggerId: str) -> dict[str, Any]:
    body = await _json(request)
    store = ctx(request).store
    with _lock:
        doc = _trigger(request, triggerId)
        if not isinstance(body, dict) or body.get("version") != doc["version"]:
            raise GenesysError(409, "The trigger version does not match the current version", "version.mismatch")
        doc.update(validate(store, body), version=doc["version"] + 1)
        store.put(KIND, doc["id"], doc)
    return render(doc)


@router.delete("/api/v2/processautomation/triggers/{triggerId}", status_code=204)
def delete_trigger(request: Request, triggerId: str) -> Response:
    ctx(request).store.delete(KIND, _trigger(request, triggerId)["id"])
    return Response(status_code=204)
