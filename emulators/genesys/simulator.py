"""The call simulator: POST /_emulator/calls places a call and the seed's Architect flow
(deploy/genesys/flows/inbound-screen-pop.yaml) runs it.

Inbound calls run as a real timeline (the default, `"realtime": true`). Every step is stored,
so GET /api/v2/conversations/{id} shows the call as it is, and is published on the
notification topics of the queue and of the agent (notifications.py):

 1. placed     the customer participant, connected to the flow.
 2. flow       "Lookup contact by phone": POST dataActionUrl with {"phoneNumber": Call.Ani}
               (Call.Ani is "tel:+15125551234"), HTTP Basic or bearer credentials from
               dataActionAuth, a 3 s budget. On success with success=true the flow sets the
               participant data contact_id, contact_name ("First Last"), account_id,
               account_name, customer_tier on the customer; on failure, timeout or not found
               it goes on without them.
 3. queued     an acd participant in the flow's queue ("Support Queue" unless queueName).
 4. alerting   the longest-idle member of the queue not on another call (or `agentId`);
               the call waits in queue while none is free. The agent's leg alerts for
               alertSeconds (default 0.5).
 5. connected  the agent answers; the acd leg disconnects (transfer); recording starts.
 6. ended      after talkSeconds (default 1.0) the customer hangs up: the legs go
               disconnected, then terminated; the recording is made.
 7. events     customer.end: matching Process Automation triggers run their published workflow,
               EventBridge delivers when configured (customer_end.py, eventbridge.py).
 8. webhook    when webhookUrl is set, the seed's conversation-ended webhook, signed, 3 tries on
               a non-2xx answer: the shape a relay could send (Genesys sends no such webhook).

durationSeconds is the call's length as Genesys records it (default: random 30-900 s), so
the talk is fast-forwarded: when the call ends its earlier timestamps move back so that
endTime - startTime = durationSeconds and endTime is the real end (events already sent keep
the times they had). A call that really lasted longer keeps its real length.
`"realtime": false` keeps the instant behaviour: the conversation is stored already ended
(outbound calls always are).

The relay webhook's body is the seed's payload (callbridge.domain.models.CallEndedEvent), signed with
the project's shared signer. Delivery (the emulator's choice for a relay, not a Genesys
behaviour): 3 tries in total on a non-2xx answer or a connection error, 1 s then 2 s apart.
Redelivery re-signs the same body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse


from . import customer_end, eventbridge
from .context import Context, ctx
from .conversations import validate_attributes
from .notifications import publish_conversation
from .wire import iso, new_id, now, parse_iso, tls

router = APIRouter()
log = logging.getLogger("emulators.genesys.simulator")

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
DEFAULT_DNIS = "+18005550100"  # the org's support line
FLOW_QUEUE = "Support Queue"    # the seed flow's transferToAcd target
RETRY_DELAYS = (1.0, 2.0)       # between tries 1-2 and 2-3
ATTEMPT_TIMEOUT = 5.0
DATA_ACTION_TIMEOUT = 3.0       # the flow's callData timeout
DEFAULT_ALERT_SECONDS = 0.5
DEFAULT_TALK_SECONDS = 1.0
MAX_PHASE_SECONDS = 3600
DELIVERY_KIND = "delivery"
SCREEN_POP = {  # participant attribute <- lookup response field (the flow's setParticipantData)
    "contact_id": "contactId", "account_id": "accountId", "account_name": "accountName", "customer_tier": "tier",
}

_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook")
_rng = random.Random()
_rng_lock = threading.Lock()



def relay_signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The relay webhook's signature as a relay of the customer's own would send it (Genesys signs
    nothing; docs/deploy.md): base64(HMAC-SHA256(secret, "{timestamp}.{raw body}")). Written
    here, not imported: the emulator is the platform side and imports nothing of Callbridge."""
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).digest()
    return {"Content-Type": "application/json", "X-Genesys-Webhook-Timestamp": str(timestamp),
            "X-Genesys-Webhook-Signature": base64.b64encode(digest).decode("ascii")}

def _pick(seq: list[Any]) -> Any:
    with _rng_lock:
        return _rng.choice(seq)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# --- agents ---------------------------------------------------------------------------------


class Agents:
    """Who is on a call. Routing picks the longest-idle free member; a call waits in queue
    while every candidate is busy. In memory: a restart ends the calls that were live."""

    def __init__(self) -> None:
        self.busy: dict[str, tuple[str, str]] = {}  # userId -> (conversationId, alerting|connected)
        self.idle_since: dict[str, float] = {}
        self._cond = asyncio.Condition()

    def free(self, candidates: list[str]) -> list[str]:
        free = [u for u in candidates if u not in self.busy]
        return sorted(free, key=lambda u: (self.idle_since.get(u, 0.0), candidates.index(u)))

    async def acquire(self, conversation_id: str, candidates: list[str]) -> str:
        async with self._cond:
            while True:
                free = self.free(candidates)
                if free:
                    self.busy[free[0]] = (conversation_id, "alerting")
                    return free[0]
                await self._cond.wait()

    def mark(self, user_id: str, state: str) -> None:
        if user_id in self.busy:
            self.busy[user_id] = (self.busy[user_id][0], state)

    async def release(self, user_id: str) -> None:
        async with self._cond:
            self.busy.pop(user_id, None)
            self.idle_since[user_id] = time.monotonic()
            self._cond.notify_all()


def agents_of(app) -> Agents:  # type: ignore[no-untyped-def]
    return app.state.agents


# --- the request ----------------------------------------------------------------------------


def _seconds(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_PHASE_SECONDS:
        raise ValueError(f"{key} must be a number of seconds between 0 and {MAX_PHASE_SECONDS}")
    return float(value)


def _parse(body: Any, context: Context) -> dict[str, Any]:
    """Validate the simulator request; raises ValueError with a message for the 400."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    known = {"ani", "dnis", "direction", "durationSeconds", "queueName", "agentId", "attributes",
             "recording", "wait", "transcodeSeconds", "customerName", "realtime", "alertSeconds", "talkSeconds"}
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
        queue = next((q for q in queues if q["name"] == FLOW_QUEUE), queues[0] if queues else None)
    agent = None
    if body.get("agentId") is not None:
        agent = store.get("user", str(body["agentId"]))
        if agent is None:
            raise ValueError(f"no user {body['agentId']!r}")
    try:
        attributes = validate_attributes(body.get("attributes") or {})
    except Exception:
        raise ValueError("attributes must be an object of string values") from None
    transcode = body.get("transcodeSeconds", 0)
    if not isinstance(transcode, (int, float)) or transcode < 0:
        raise ValueError("transcodeSeconds must be >= 0")
    realtime = body.get("realtime", True)
    if not isinstance(realtime, bool):
        raise ValueError("realtime must be true or false")
    return {
        "direction": direction, "ani": ani, "dnis": dnis, "duration": duration, "queue": queue,
        "agent": agent, "attributes": dict(attributes), "recording": bool(body.get("recording", True)),
        "wait": bool(body.get("wait", False)), "transcode": float(transcode),
        "customerName": body.get("customerName"),
        "realtime": realtime and direction == "inbound",
        "alert": _seconds(body, "alertSeconds", DEFAULT_ALERT_SECONDS),
        "talk": _seconds(body, "talkSeconds", DEFAULT_TALK_SECONDS),
    }


# --- the inbound flow's data action ----------------------------------------------------------


def _screen_pop_attributes(out: dict[str, Any]) -> dict[str, str]:
    """setParticipantData as the seed flow writes it: If(IsSet(x), x, "") for each value."""
    def value(key: str) -> str:
        return out.get(key) if isinstance(out.get(key), str) else ""

    attributes = {name: value(field) for name, field in SCREEN_POP.items()}
    first = out.get("firstName")
    last = out.get("lastName")
    attributes["contact_name"] = (f"{first} " if isinstance(first, str) else "") + (last if isinstance(last, str) else "")
    return attributes


async def run_data_action(context: Context, ani: str) -> dict[str, Any]:
    """The flow's "Lookup contact by phone" callData: result success, failure or timeout."""
    url, auth = context.runtime.data_action()
    if not url:
        return {"result": "skipped", "found": False, "status": None, "elapsedMs": 0, "attributes": {}}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    basic = None
    if auth and "token" in auth:
        headers["Authorization"] = f"Bearer {auth['token']}"
    elif auth:
        basic = (auth["username"], auth["password"])
    started = time.monotonic()
    outcome: dict[str, Any] = {"result": "failure", "found": False, "status": None, "attributes": {}}
    try:
        async with httpx.AsyncClient(timeout=DATA_ACTION_TIMEOUT, verify=tls()) as client:
            # Call.Ani is a tel: URI; the integration's requestTemplate sends it as is.
            r = await asyncio.wait_for(
                client.post(url, json={"phoneNumber": f"tel:{ani}"}, headers=headers, auth=basic),
                DATA_ACTION_TIMEOUT)
        outcome["status"] = r.status_code
        out = r.json() if r.is_success else None
        # The output contract types every field; a response that breaks it is a failure.
        typed = isinstance(out, dict) and isinstance(out.get("success", False), bool) and all(
            out.get(k) is None or isinstance(out.get(k), str)
            for k in ("contactId", "firstName", "lastName", "accountId", "accountName", "tier"))
        if typed:
            outcome["result"] = "success"
            outcome["found"] = out.get("success") is True
            if outcome["found"]:
                outcome["attributes"] = _screen_pop_attributes(out)
    except (asyncio.TimeoutError, httpx.TimeoutException):
        outcome["result"] = "timeout"
    except (httpx.HTTPError, ValueError):
        pass  # failure: the flow carries on without the data
    outcome["elapsedMs"] = int((time.monotonic() - started) * 1000)
    return outcome


# --- building blocks -----------------------------------------------------------------------


def tel(number: str) -> str:
    return f"tel:{number}"


def _customer(req: dict[str, Any], participant_id: str, start: str) -> dict[str, Any]:
    customer = {
        "id": participant_id, "purpose": "customer" if req["direction"] == "inbound" else "external",
        "direction": req["direction"],
        "address": tel(req["ani"] if req["direction"] == "inbound" else req["dnis"]),
        "ani": tel(req["ani"]), "dnis": tel(req["dnis"]), "startTime": start, "connectedTime": start,
        "endTime": None, "callId": new_id(), "disconnectType": None, "attributes": dict(req["attributes"]),
        "recordingId": None, "state": "connected",
    }
    if req.get("customerName"):
        customer["name"] = customer["aniName"] = req["customerName"]
    return customer


def _acd(req: dict[str, Any], queue: dict[str, Any], start: str) -> dict[str, Any]:
    return {
        "id": new_id(), "purpose": "acd", "direction": req["direction"], "name": queue["name"],
        "address": tel(req["dnis"]), "ani": tel(req["ani"]), "dnis": tel(req["dnis"]),
        "startTime": start, "connectedTime": start, "endTime": None, "callId": new_id(),
        "disconnectType": None, "queueId": queue["id"], "queueName": queue["name"], "state": "connected",
    }


def _agent_leg(req: dict[str, Any], agent: dict[str, Any], queue: dict[str, Any] | None, start: str) -> dict[str, Any]:
    leg = {
        "id": new_id(), "purpose": "agent", "direction": req["direction"], "name": agent["name"],
        "userId": agent["id"], "address": f"sip:{agent['id']}@localhost", "ani": tel(req["ani"]),
        "dnis": tel(req["dnis"]), "startTime": start, "startAlertingTime": start, "connectedTime": None,
        "endTime": None, "callId": new_id(), "disconnectType": None, "recordingId": None, "state": "alerting",
    }
    if queue:
        leg.update(queueId=queue["id"], queueName=queue["name"])
    return leg


def _payload(conv: dict[str, Any], req: dict[str, Any], recording_id: str | None) -> dict[str, Any]:
    """The conversation-ended webhook body, from the stored (ended) conversation."""
    customer = next(p for p in conv["participants"] if p["purpose"] in ("customer", "external"))
    agent = next(p for p in conv["participants"] if p["purpose"] == "agent")
    start, end = parse_iso(conv["startTime"]), parse_iso(conv["endTime"])
    queue = req["queue"]
    return {
        "conversationId": conv["id"],
        "participantId": customer["id"],
        "conversationType": "phone",
        "callerId": req["ani"],
        "calleeId": req["dnis"],
        "direction": req["direction"].upper(),
        "startTime": _webhook_time(start),
        "endTime": _webhook_time(end),
        "durationSeconds": int(round((end - start).total_seconds())),
        "recordingId": recording_id,
        "agentId": agent["userId"],
        "agentName": agent["name"],
        "queueId": queue["id"] if queue else None,
        "queueName": queue["name"] if queue else None,
        "interactionId": conv["id"],
        "attributes": dict(customer.get("attributes") or {}),
    }


def _store_recording(context: Context, conv: dict[str, Any], req: dict[str, Any], recording_id: str,
                     agent_id: str, connected: datetime, end: datetime) -> None:
    context.store.put("recording", recording_id, {
        "id": recording_id, "conversationId": conv["id"], "startTime": iso(connected),
        "endTime": iso(end), "durationMs": int((end - connected).total_seconds() * 1000),
        "sessionId": new_id(), "userIds": [agent_id], "creationTime": iso(end),
        "readyAt": time.time() + req["transcode"], "transcodeMs": int(req["transcode"] * 1000),
    })


def create_call(context: Context, req: dict[str, Any]) -> dict[str, Any]:
    """`"realtime": false` (and outbound): store the already-ended conversation (and its
    recording); return the webhook payload."""
    store = context.store
    end = now().replace(microsecond=0)
    start = end - timedelta(seconds=req["duration"])
    conversation_id = req["conversationId"]
    queue = req["queue"]
    agent = req["agent"]
    wait = min(10, req["duration"] // 4) if queue else 0
    connected = start + timedelta(seconds=wait)
    recording_id = req["recordingId"]
    customer = _customer(req, req["participantId"], iso(start))
    customer.update(endTime=iso(end), disconnectType="endpoint", recordingId=recording_id)
    participants = [customer]
    if queue:
        acd = _acd(req, queue, iso(start))
        acd.update(endTime=iso(connected), disconnectType="transfer")
        participants.append(acd)
    agent_leg = _agent_leg(req, agent, queue, iso(connected))
    agent_leg.update(connectedTime=iso(connected), endTime=iso(end), disconnectType="client",
                     recordingId=recording_id)
    agent_leg.pop("startAlertingTime")
    if req["direction"] == "outbound":
        participants.insert(0, agent_leg)  # the agent dialled: their leg comes first
    else:
        participants.append(agent_leg)
    for p in participants:
        p["state"] = "terminated"
    conv = {
        "id": conversation_id, "direction": req["direction"], "ani": req["ani"], "dnis": req["dnis"],
        "startTime": iso(start), "endTime": iso(end), "divisionId": store.meta_get("home_division"),
        "queueId": queue["id"] if queue else None, "participants": participants, "phase": "ended",
    }
    store.put("conversation", conversation_id, conv)
    if recording_id:
        _store_recording(context, conv, req, recording_id, agent["id"], connected, end)
    return _payload(conv, req, recording_id)


def instant_agent(app, context: Context, req: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An instant call holds no agent; it goes to one who is free now if there is one."""
    queue = req["queue"]
    candidates = queue["memberIds"] if queue else context.store.ids("user")
    return context.store.get("user", (agents_of(app).free(candidates) or [_pick(candidates)])[0])


# --- the live timeline ---------------------------------------------------------------------


def _shift_times(conv: dict[str, Any], shift: timedelta) -> None:
    def moved(value: str | None) -> str | None:
        return iso(parse_iso(value) + shift) if value else value

    conv["startTime"] = moved(conv["startTime"])
    for p in conv["participants"]:
        for key in ("startTime", "startAlertingTime", "connectedTime", "endTime"):
            if key in p:
                p[key] = moved(p[key])


class Timeline:
    """One live call: each step re-reads the stored conversation (a PATCH of its attributes
    between steps is kept), changes it, stores it and publishes it. Event loop only."""

    def __init__(self, app, context: Context, req: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
        self.app, self.context, self.req = app, context, req
        self.id = req["conversationId"]

    def step(self, change) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        store = self.context.store
        conv = store.get("conversation", self.id)
        change(conv)
        store.put("conversation", self.id, conv)
        publish_conversation(self.app, conv)
        return conv

    def _leg(self, conv: dict[str, Any], purpose: str) -> dict[str, Any]:
        return next(p for p in conv["participants"] if p["purpose"] == purpose)

    async def run(self) -> dict[str, Any]:
        req, context, store = self.req, self.context, self.context.store
        started = now()
        conv = {
            "id": self.id, "direction": req["direction"], "ani": req["ani"], "dnis": req["dnis"],
            "startTime": iso(started), "endTime": None, "divisionId": store.meta_get("home_division"),
            "queueId": None, "participants": [_customer(req, req["participantId"], iso(started))], "phase": "flow",
        }
        store.put("conversation", self.id, conv)

        lookup = await run_data_action(context, req["ani"])
        lookup_public = {k: v for k, v in lookup.items() if k != "attributes"}
        self._status(dataAction=lookup_public)
        queue = req["queue"]

        def queued(conv: dict[str, Any]) -> None:
            customer = self._leg(conv, "customer")
            customer["attributes"] = {**customer.get("attributes", {}), **lookup["attributes"], **req["attributes"]}
            conv["queueId"] = queue["id"]
            conv["phase"] = "queued"
            conv["participants"].append(_acd(req, queue, iso(now())))

        self.step(queued)
        agents = agents_of(self.app)
        candidates = [req["agent"]["id"]] if req["agent"] else list(queue["memberIds"])
        agent_id = await agents.acquire(self.id, candidates)
        try:
            agent = req["agent"] or store.get("user", agent_id)
            self._status(agentId=agent["id"], agentName=agent["name"])

            def alerting(conv: dict[str, Any]) -> None:
                conv["phase"] = "alerting"
                conv["participants"].append(_agent_leg(req, agent, queue, iso(now())))

            self.step(alerting)
            await asyncio.sleep(req["alert"])
            agents.mark(agent_id, "connected")

            def connected(conv: dict[str, Any]) -> None:
                t = iso(now())
                conv["phase"] = "connected"
                acd = self._leg(conv, "acd")
                acd.update(state="disconnected", endTime=t, disconnectType="transfer")
                leg = self._leg(conv, "agent")
                leg.update(state="connected", connectedTime=t)
                if req["recordingId"]:
                    for p in (leg, self._leg(conv, "customer")):
                        p.update(recordingId=req["recordingId"], recordingActive=True)

            self.step(connected)
            await asyncio.sleep(req["talk"])

            def disconnected(conv: dict[str, Any]) -> None:
                end_real = now()
                elapsed = (end_real - parse_iso(conv["startTime"])).total_seconds()
                duration = max(req["duration"], math.ceil(elapsed))
                end = end_real.replace(microsecond=0)
                _shift_times(conv, (end - timedelta(seconds=duration)) - parse_iso(conv["startTime"]))
                conv.update(phase="ended", endTime=iso(end))
                for p, how in ((self._leg(conv, "customer"), "endpoint"), (self._leg(conv, "agent"), "peer")):
                    p.update(state="disconnected", endTime=iso(end), disconnectType=how, recordingActive=False)

            conv = self.step(disconnected)

            def terminated(conv: dict[str, Any]) -> None:
                for p in conv["participants"]:
                    p["state"] = "terminated"

            conv = self.step(terminated)
        finally:
            await agents.release(agent_id)
        if req["recordingId"]:
            leg = self._leg(conv, "agent")
            _store_recording(context, conv, req, req["recordingId"], agent_id,
                             parse_iso(leg["connectedTime"]), parse_iso(conv["endTime"]))
        payload = _payload(conv, req, req["recordingId"])
        self._status(body=_body(payload), state="queued")
        # The customer leg has ended: Genesys publishes customer.end (triggers, EventBridge);
        # the seed's signed webhook (a relay's shape) goes out alongside when configured.
        status, _ = await asyncio.gather(asyncio.to_thread(deliver, context, self.id),
                                         customer_end.publish(context, conv))
        return status

    def _status(self, **changes: Any) -> None:
        store = self.context.store
        status = store.get(DELIVERY_KIND, self.id)
        status.update(changes)
        store.put(DELIVERY_KIND, self.id, status)


def _body(payload: dict[str, Any]) -> str:
    # Kept as the exact bytes sent, so a redelivery is byte-identical.
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


async def _run_logged(timeline: Timeline) -> dict[str, Any] | None:
    try:
        return await timeline.run()
    except asyncio.CancelledError:
        raise
    except Exception:  # a background task has no caller to raise to
        log.exception("simulated call %s crashed", timeline.id)
        return None


def end_interrupted_calls(store) -> int:  # type: ignore[no-untyped-def]
    """At start: calls that were live when the emulator stopped end now ("system")."""
    ended = 0
    for conv in store.all("conversation"):
        if conv.get("phase", "ended") == "ended":
            continue
        stamp = iso(now())
        for p in conv["participants"]:
            if not p.get("endTime"):
                p.update(endTime=stamp, disconnectType="system")
            p.update(state="terminated", recordingActive=False)
        conv.update(endTime=stamp, phase="ended")
        store.put("conversation", conv["id"], conv)
        status = store.get(DELIVERY_KIND, conv["id"])
        if status is not None:
            status.update(state="failed", lastError="the emulator stopped during the call")
            store.put(DELIVERY_KIND, conv["id"], status)
        ended += 1
    return ended


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
    with httpx.Client(timeout=ATTEMPT_TIMEOUT, verify=tls()) as client:
        for attempt in range(len(RETRY_DELAYS) + 1):
            if attempt:
                time.sleep(RETRY_DELAYS[attempt - 1])
            headers = relay_signed_headers(secret, int(time.time()), body) if secret else {"Content-Type": "application/json"}
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


def public_status(status: dict[str, Any], conv: dict[str, Any] | None = None, store=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out = {
        "conversationId": status["conversationId"],
        "state": status["state"],
        "delivered": status["delivered"],
        "attempts": status["attempts"],
        "lastStatus": status["lastStatus"],
        "lastError": status["lastError"],
        "log": status["log"],
        "payload": json.loads(status["body"]) if status.get("body") else None,
    }
    if conv is not None:
        out["callState"] = conv.get("phase", "ended")
    for key in ("dataAction", "agentId", "agentName"):
        if key in status:
            out[key] = status[key]
    if store is not None:  # what the customer.end event did (customer_end.py, eventbridge.py)
        out["triggers"] = customer_end.invocations(store, status["conversationId"])
        out["eventBridge"] = eventbridge.deliveries(store, status["conversationId"])
    return out


def _new_status(conversation_id: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "conversationId": conversation_id, "state": "queued" if payload else "in_call", "delivered": False,
        "attempts": 0, "lastStatus": None, "lastError": None, "log": [],
        "body": _body(payload) if payload else None,
    }


def _answer(req: dict[str, Any], payload: dict[str, Any] | None, started: str | None = None) -> dict[str, Any]:
    queue, agent = req["queue"], req["agent"]
    if payload is None:  # a live call: what is known so far
        return {
            "conversationId": req["conversationId"], "participantId": req["participantId"],
            "recordingId": req["recordingId"], "agentId": agent["id"] if agent else None,
            "agentName": agent["name"] if agent else None, "queueId": queue["id"] if queue else None,
            "queueName": queue["name"] if queue else None, "startTime": started, "endTime": None,
            "durationSeconds": None, "payload": None, "callState": "flow",
        }
    return {
        "conversationId": payload["conversationId"], "participantId": payload["participantId"],
        "recordingId": payload["recordingId"], "agentId": payload["agentId"], "agentName": payload["agentName"],
        "queueId": payload["queueId"], "queueName": payload["queueName"], "startTime": payload["startTime"],
        "endTime": payload["endTime"], "durationSeconds": payload["durationSeconds"], "payload": payload,
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
    if req["direction"] == "inbound" and req["queue"] is None:
        return _error("the org has no queue to route to")
    conversation_id = req["conversationId"] = new_id()
    req["participantId"] = new_id()
    req["recordingId"] = new_id() if req["recording"] else None
    store = context.store

    if req["realtime"]:
        store.put(DELIVERY_KIND, conversation_id, _new_status(conversation_id, None))
        timeline = Timeline(request.app, context, req)
        task = asyncio.create_task(_run_logged(timeline))
        request.app.state.calls.add(task)
        task.add_done_callback(request.app.state.calls.discard)
        if not req["wait"]:
            await asyncio.sleep(0)  # let the timeline store the placed call before answering
            return JSONResponse(_answer(req, None, iso(now())), status_code=202)
        status = await asyncio.shield(task)
        if status is None:
            return _error("the simulated call failed; see the emulator's log", 500)
        payload = json.loads(status["body"])
        out = {**_answer(req, payload), "delivery": public_status(status, store=store)}
        if "dataAction" in status:
            out["dataAction"] = status["dataAction"]
        return JSONResponse(out, status_code=200)

    req["agent"] = req["agent"] or instant_agent(request.app, context, req)
    data_action = None
    if req["direction"] == "inbound":
        data_action = await run_data_action(context, req["ani"])
        req["attributes"] = {**data_action.pop("attributes"), **req["attributes"]}
    payload = await asyncio.to_thread(create_call, context, req)
    publish_conversation(request.app, store.get("conversation", conversation_id))
    status = _new_status(conversation_id, payload)
    if data_action is not None:
        status["dataAction"] = data_action
    store.put(DELIVERY_KIND, conversation_id, status)
    answer = _answer(req, payload)
    if data_action is not None:
        answer["dataAction"] = data_action
    ended = store.get("conversation", conversation_id)
    if req["wait"]:
        status, _ = await asyncio.gather(asyncio.to_thread(deliver, context, conversation_id),
                                         customer_end.publish(context, ended))
        return JSONResponse({**answer, "delivery": public_status(status, store=store)}, status_code=200)
    _executor.submit(_deliver_logged, context, conversation_id)
    task = asyncio.create_task(customer_end.publish(context, ended))
    request.app.state.calls.add(task)
    task.add_done_callback(request.app.state.calls.discard)
    return JSONResponse(answer, status_code=202)


@router.get("/_emulator/calls/{conversationId}")
def get_call_status(request: Request, conversationId: str) -> JSONResponse:
    store = ctx(request).store
    status = store.get(DELIVERY_KIND, conversationId)
    if status is None:
        return JSONResponse({"error": f"no simulated call {conversationId}"}, status_code=404)
    return JSONResponse(public_status(status, store.get("conversation", conversationId), store))


@router.post("/_emulator/calls/{conversationId}/redeliver")
async def redeliver(request: Request, conversationId: str) -> JSONResponse:
    context = ctx(request)
    status = context.store.get(DELIVERY_KIND, conversationId)
    if status is None:
        return JSONResponse({"error": f"no simulated call {conversationId}"}, status_code=404)
    if not status.get("body"):
        return JSONResponse({"error": f"call {conversationId} has not ended yet"}, status_code=409)
    wait = request.query_params.get("wait", "false").lower() == "true"
    status.update(state="queued", delivered=False, attempts=0, lastStatus=None, lastError=None)
    context.store.put(DELIVERY_KIND, conversationId, status)
    if wait:
        status = await asyncio.to_thread(deliver, context, conversationId)
        return JSONResponse(public_status(status))
    _executor.submit(_deliver_logged, context, conversationId)
    return JSONResponse(public_status(status), status_code=202)


@router.post("/_emulator/calls/{conversationId}/customer-end")
async def republish_customer_end(request: Request, conversationId: str) -> JSONResponse:
    """A test tool: publish an ended call's customer.end again (its triggers run again, EventBridge
    delivers again when configured), as a second delivery path or a repeated delivery would reach
    the starter. Answers once the triggers ran."""
    context = ctx(request)
    conv = context.store.get("conversation", conversationId)
    if conv is None:
        return _error(f"no conversation {conversationId}", 404)
    if conv.get("phase", "ended") != "ended":
        return _error(f"call {conversationId} has not ended yet", 409)
    invocations = await customer_end.publish(context, conv)
    return JSONResponse({"conversationId": conversationId, "triggers": invocations})


@router.get("/_emulator/agents")
def list_agents(request: Request, queueName: str | None = None, status: str | None = None) -> JSONResponse:
    """Every seeded agent with the queues they are in and whether they are on a call now
    (available, alerting or connected), in routing order: who would get the next call first."""
    store = ctx(request).store
    agents = agents_of(request.app)
    queues = store.all("queue")
    if queueName is not None and not any(q["name"] == queueName for q in queues):
        return _error(f"no queue named {queueName!r}", 404)
    users = store.all("user")
    order = agents.free([u["id"] for u in users])
    rank = {user_id: i for i, user_id in enumerate(order)}
    out = []
    for user in users:
        member_of = [{"id": q["id"], "name": q["name"]} for q in queues if user["id"] in q["memberIds"]]
        if queueName is not None and not any(q["name"] == queueName for q in member_of):
            continue
        busy = agents.busy.get(user["id"])
        item = {"id": user["id"], "name": user["name"], "email": user["email"], "queues": member_of,
                "status": busy[1] if busy else "available", "conversationId": busy[0] if busy else None}
        if status is None or item["status"] == status:
            out.append(item)
    out.sort(key=lambda a: rank.get(a["id"], len(rank)))
    return JSONResponse({"agents": out})
