"""The call simulator: POST /_emulator/calls makes an ended phone conversation and sends
Genesys's conversation-ended webhook for it.

The webhook body is the seed's payload (callbridge.models.CallEndedEvent), signed with the
project's shared signer. Delivery: 3 tries in total on a non-2xx answer or a connection
error, 1 s then 2 s apart. Redelivery re-signs the same body, as Genesys does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from callbridge.signature import signed_headers

from .context import Context, ctx
from .conversations import validate_attributes
from .notifications import publish_call
from .wire import iso, new_id, now

router = APIRouter()
log = logging.getLogger("emulators.genesys.simulator")

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
DEFAULT_DNIS = "+18005550100"  # the org's support line
RETRY_DELAYS = (1.0, 2.0)       # between tries 1-2 and 2-3
ATTEMPT_TIMEOUT = 5.0
DATA_ACTION_TIMEOUT = 3.0
DELIVERY_KIND = "delivery"

_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook")
_rng = random.Random()
_rng_lock = threading.Lock()


def _pick(seq: list[Any]) -> Any:
    with _rng_lock:
        return _rng.choice(seq)


def _error(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def _parse(body: Any, context: Context) -> dict[str, Any]:
    """Validate the simulator request; raises ValueError with a message for the 400."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    known = {"ani", "dnis", "direction", "durationSeconds", "queueName", "agentId", "attributes",
             "recording", "wait", "transcodeSeconds", "customerName"}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    direction = str(body.get("direction", "inbound")).lower()
    if direction not in ("inbound", "outbound"):
        raise ValueError("direction must be inbound or outbound")
    ani = body.get("ani")
    dnis = body.get("dnis")
    if dnis is None:
        if direction == "outbound":
            # ani is the calling number and dnis the number dialled; an outbound call has no default.
            raise ValueError("dnis (the customer's number) is required for outbound calls")
        dnis = DEFAULT_DNIS
    if ani is None and direction == "outbound":
        ani = DEFAULT_DNIS
    for name, value in (("ani", ani), ("dnis", dnis)):
        if not isinstance(value, str) or not E164.match(value):
            raise ValueError(f"{name} must be an E.164 number like +15125551234")
    duration = body.get("durationSeconds")
    if duration is None:
        duration = _rng.randint(30, 900)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= 7 * 24 * 3600:
        raise ValueError("durationSeconds must be an integer number of seconds")
    store = context.store
    queues = store.all("queue")
    queue = None
    if body.get("queueName") is not None:
        queue = next((q for q in queues if q["name"] == body["queueName"]), None)
        if queue is None:
            raise ValueError(f"no queue named {body['queueName']!r}; seeded: {[q['name'] for q in queues]}")
    elif direction == "inbound":
        queue = _pick(queues)
    agent = None
    if body.get("agentId") is not None:
        agent = store.get("user", str(body["agentId"]))
        if agent is None:
            raise ValueError(f"no user {body['agentId']!r}")
    else:
        candidates = queue["memberIds"] if queue else [u for u in store.ids("user")]
        agent = store.get("user", _pick(candidates))
    try:
        attributes = validate_attributes(body.get("attributes") or {})
    except Exception:
        raise ValueError("attributes must be an object of string values") from None
    transcode = body.get("transcodeSeconds", 0)
    if not isinstance(transcode, (int, float)) or transcode < 0:
        raise ValueError("transcodeSeconds must be >= 0")
    return {
        "direction": direction, "ani": ani, "dnis": dnis, "duration": duration, "queue": queue,
        "agent": agent, "attributes": dict(attributes), "recording": bool(body.get("recording", True)),
        "wait": bool(body.get("wait", False)), "transcode": float(transcode),
        "customerName": body.get("customerName"),
    }


def _run_data_action(url: str, req: dict[str, Any], conversation_id: str) -> dict[str, Any]:
    """The inbound flow's data action: its string outputs become participant attributes."""
    try:
        r = httpx.post(url, json={"conversationId": conversation_id, "ani": req["ani"], "dnis": req["dnis"],
                                  "direction": req["direction"]}, timeout=DATA_ACTION_TIMEOUT)
        result = r.json() if r.is_success else {}
    except (httpx.HTTPError, ValueError):
        result = {}  # the flow takes its failure path and carries on without the data
    return {"status": "ok" if result else "failed",
            "attributes": {k: v for k, v in result.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(result, dict) else {}}


def create_call(context: Context, req: dict[str, Any]) -> dict[str, Any]:
    """Store the ended conversation (and its recording); return the webhook payload."""
    store = context.store
    end = now().replace(microsecond=0)
    start = end - timedelta(seconds=req["duration"])
    conversation_id = req.get("conversationId") or new_id()
    queue, agent = req["queue"], req["agent"]
    wait = min(10, req["duration"] // 4) if queue else 0
    connected = start + timedelta(seconds=wait)
    recording_id = new_id() if req["recording"] else None
    tel = lambda n: f"tel:{n}"  # noqa: E731
    customer = {
        "id": new_id(), "purpose": "customer" if req["direction"] == "inbound" else "external",
        "direction": req["direction"], "address": tel(req["ani"] if req["direction"] == "inbound" else req["dnis"]),
        "ani": tel(req["ani"]), "dnis": tel(req["dnis"]), "startTime": iso(start), "connectedTime": iso(start),
        "endTime": iso(end), "callId": new_id(), "disconnectType": "endpoint",
        "attributes": req["attributes"], "recordingId": recording_id,
    }
    if req.get("customerName"):
        customer["name"] = customer["aniName"] = req["customerName"]
    participants = [customer]
    if queue:
        participants.append({
            "id": new_id(), "purpose": "acd", "direction": req["direction"], "name": queue["name"],
            "address": tel(req["dnis"]), "ani": tel(req["ani"]), "dnis": tel(req["dnis"]),
            "startTime": iso(start), "connectedTime": iso(start), "endTime": iso(connected),
            "callId": new_id(), "disconnectType": "transfer", "queueId": queue["id"], "queueName": queue["name"],
        })
    agent_participant = {
        "id": new_id(), "purpose": "agent", "direction": req["direction"], "name": agent["name"],
        "userId": agent["id"], "address": f"sip:{agent['id']}@localhost", "ani": tel(req["ani"]),
        "dnis": tel(req["dnis"]), "startTime": iso(connected), "connectedTime": iso(connected),
        "endTime": iso(end), "callId": new_id(), "disconnectType": "client", "recordingId": recording_id,
    }
    if queue:
        agent_participant.update(queueId=queue["id"], queueName=queue["name"])
    if req["direction"] == "outbound":
        participants.insert(0, agent_participant)  # the agent dialled: their leg comes first
    else:
        participants.append(agent_participant)
    conv = {
        "id": conversation_id, "direction": req["direction"], "ani": req["ani"], "dnis": req["dnis"],
        "startTime": iso(start), "endTime": iso(end), "divisionId": store.meta_get("home_division"),
        "queueId": queue["id"] if queue else None, "participants": participants,
    }
    store.put("conversation", conversation_id, conv)
    if recording_id:
        store.put("recording", recording_id, {
            "id": recording_id, "conversationId": conversation_id, "startTime": iso(connected),
            "endTime": iso(end), "durationMs": int((end - connected).total_seconds() * 1000),
            "sessionId": new_id(), "userIds": [agent["id"]], "creationTime": iso(end),
            "readyAt": time.time() + req["transcode"], "transcodeMs": int(req["transcode"] * 1000),
        })
    return {
        "conversationId": conversation_id,
        "participantId": customer["id"],
        "conversationType": "phone",
        "callerId": req["ani"],
        "calleeId": req["dnis"],
        "direction": req["direction"].upper(),
        "startTime": _webhook_time(start),
        "endTime": _webhook_time(end),
        "durationSeconds": req["duration"],
        "recordingId": recording_id,
        "agentId": agent["id"],
        "agentName": agent["name"],
        "queueId": queue["id"] if queue else None,
        "queueName": queue["name"] if queue else None,
        "interactionId": conversation_id,
        "attributes": dict(customer["attributes"]),
    }


def _webhook_time(dt) -> str:  # type: ignore[no-untyped-def]
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver(context: Context, conversation_id: str) -> dict[str, Any]:
    """Send the stored webhook body (3 tries); record and return the delivery status."""
    store = context.store
    status = store.get(DELIVERY_KIND, conversation_id)
    assert status is not None
    url, secret = context.runtime.snapshot()
    body = status["body"].encode("utf-8")
    if not url:
        status.update(lastError="no webhook URL configured", state="not_configured")
        store.put(DELIVERY_KIND, conversation_id, status)
        return status
    status.update(state="delivering", delivered=False, url=url)
    store.put(DELIVERY_KIND, conversation_id, status)
    with httpx.Client(timeout=ATTEMPT_TIMEOUT) as client:
        for attempt in range(len(RETRY_DELAYS) + 1):
            if attempt:
                time.sleep(RETRY_DELAYS[attempt - 1])
            headers = signed_headers(secret, int(time.time()), body) if secret else {"Content-Type": "application/json"}
            status["attempts"] += 1
            try:
                r = client.post(url, content=body, headers=headers)
                status.update(lastStatus=r.status_code, lastError=None)
                ok = 200 <= r.status_code < 300
            except httpx.HTTPError as exc:
                status.update(lastStatus=None, lastError=f"{type(exc).__name__}: {exc}")
                ok = False
            status["log"].append({"at": iso(now()), "status": status["lastStatus"], "error": status["lastError"]})
            store.put(DELIVERY_KIND, conversation_id, status)
            if ok:
                status.update(delivered=True, state="delivered")
                break
        else:
            status["state"] = "failed"
    store.put(DELIVERY_KIND, conversation_id, status)
    return status


def _deliver_logged(context: Context, conversation_id: str) -> None:
    try:
        deliver(context, conversation_id)
    except Exception:  # a background thread has no caller to raise to
        log.exception("webhook delivery for %s crashed", conversation_id)


def public_status(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "conversationId": status["conversationId"],
        "state": status["state"],
        "delivered": status["delivered"],
        "attempts": status["attempts"],
        "lastStatus": status["lastStatus"],
        "lastError": status["lastError"],
        "log": status["log"],
        "payload": json.loads(status["body"]),
    }


def _new_status(conversation_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "conversationId": conversation_id, "state": "queued", "delivered": False, "attempts": 0,
        "lastStatus": None, "lastError": None, "log": [],
        # Kept as the exact bytes sent, so a redelivery is byte-identical.
        "body": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
    }


@router.post("/_emulator/calls")
async def post_call(request: Request) -> JSONResponse:
    context = ctx(request)
    try:
        body = await request.json()
    except ValueError:
        return _error("body must be JSON")
    try:
        req = _parse(body, context)
    except ValueError as exc:
        return _error(str(exc))
    req["conversationId"] = new_id()
    data_action_url = context.runtime.data_action_url
    data_action = None
    if data_action_url and req["direction"] == "inbound":
        data_action = await asyncio.to_thread(_run_data_action, data_action_url, req, req["conversationId"])
        req["attributes"] = {**data_action["attributes"], **req["attributes"]}
    payload = await asyncio.to_thread(create_call, context, req)
    conversation_id = payload["conversationId"]
    publish_call(request.app, context.store.get("conversation", conversation_id))
    context.store.put(DELIVERY_KIND, conversation_id, _new_status(conversation_id, payload))
    answer: dict[str, Any] = {
        "conversationId": conversation_id,
        "participantId": payload["participantId"],
        "recordingId": payload["recordingId"],
        "agentId": payload["agentId"],
        "agentName": payload["agentName"],
        "queueId": payload["queueId"],
        "queueName": payload["queueName"],
        "startTime": payload["startTime"],
        "endTime": payload["endTime"],
        "durationSeconds": payload["durationSeconds"],
        "payload": payload,
    }
    if data_action is not None:
        answer["dataAction"] = data_action["status"]
    if req["wait"]:
        status = await asyncio.to_thread(deliver, context, conversation_id)
        return JSONResponse({**answer, "delivery": public_status(status)}, status_code=200)
    _executor.submit(_deliver_logged, context, conversation_id)
    return JSONResponse(answer, status_code=202)


@router.get("/_emulator/calls/{conversationId}")
def get_call_status(request: Request, conversationId: str) -> JSONResponse:
    status = ctx(request).store.get(DELIVERY_KIND, conversationId)
    if status is None:
        return JSONResponse({"error": f"no simulated call {conversationId}"}, status_code=404)
    return JSONResponse(public_status(status))


@router.post("/_emulator/calls/{conversationId}/redeliver")
async def redeliver(request: Request, conversationId: str) -> JSONResponse:
    context = ctx(request)
    status = context.store.get(DELIVERY_KIND, conversationId)
    if status is None:
        return JSONResponse({"error": f"no simulated call {conversationId}"}, status_code=404)
    wait = request.query_params.get("wait", "false").lower() == "true"
    status.update(state="queued", delivered=False, attempts=0, lastStatus=None, lastError=None)
    context.store.put(DELIVERY_KIND, conversationId, status)
    if wait:
        status = await asyncio.to_thread(deliver, context, conversationId)
        return JSONResponse(public_status(status))
    _executor.submit(_deliver_logged, context, conversationId)
    return JSONResponse(public_status(status), status_code=202)
