"""Conversations: GET /api/v2/conversations/{id}, GET /api/v2/conversations/calls/{id},
PATCH .../calls/{id}/participants/{participantId}/attributes.

A conversation is stored once, in an internal shape, and rendered into the two views the
API has: Conversation (Participant + Call communications) and CallConversation
(CallMediaParticipant). A simulated call is stored at every step of its timeline (see
simulator.py), so both views show it as it is now: live legs without endTime, states alerting,
connected, disconnected, terminated.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .context import ctx, stored
from .errors import GenesysError, bad_request, not_found

router = APIRouter()

KIND = "conversation"
MAX_ATTRIBUTES = 100  # keys per participant the emulator accepts (the seed's payload cap)
MAX_ATTRIBUTE_VALUE = 1024


def tel(number: str) -> str:
    return number if number.startswith(("tel:", "sip:")) else f"tel:{number}"


def _division_memberships(conv: dict[str, Any]) -> list[dict[str, Any]]:
    division_id = conv["divisionId"]
    entities = [{"id": p["userId"], "selfUri": f"/api/v2/users/{p['userId']}"}
                for p in conv["participants"] if p.get("userId")]
    if conv.get("queueId"):
        entities.append({"id": conv["queueId"], "selfUri": f"/api/v2/routing/queues/{conv['queueId']}"})
    return [{
        "division": {"id": division_id, "selfUri": f"/api/v2/authorization/divisions/{division_id}"},
        "entities": entities,
    }]


def _state(p: dict[str, Any]) -> str:
    # Conversations stored before the live simulator have no state: they had all ended.
    return p.get("state", "terminated")


def _optional(out: dict[str, Any], p: dict[str, Any], *pairs: tuple[str, str]) -> None:
    for key, source in pairs:
        if p.get(source):
            out[key] = p[source]


def _call(conv: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = {
        "state": _state(p),
        "initialState": p.get("initialState") or ("alerting" if p["direction"] == "inbound" else "dialing"),
        "id": p["callId"],
        "direction": p["direction"],
        "recording": bool(p.get("recordingId")),
        "recordingState": "active" if p.get("recordingActive") else "none",
        "muted": False,
        "confined": False,
        "held": False,
        "securePause": False,
        "segments": [],
        "provider": "Edge",
        "afterCallWorkRequired": False,
    }
    _optional(call, p, ("startAlertingTime", "startAlertingTime"), ("connectedTime", "connectedTime"),
              ("disconnectedTime", "endTime"), ("disconnectType", "disconnectType"))
    if p.get("connectedTime"):
        segment: dict[str, Any] = {"startTime": p["connectedTime"], "type": "Interact"}
        if p.get("endTime"):
            segment.update(endTime=p["endTime"], howEnded="Disconnect", disconnectType=p["disconnectType"])
        call["segments"].append(segment)
    if p.get("recordingId"):
        call["recordingId"] = p["recordingId"]
    return call


def render_conversation(conv: dict[str, Any]) -> dict[str, Any]:
    """The Conversation model."""
    participants = []
    for p in conv["participants"]:
        item: dict[str, Any] = {
            "id": p["id"],
            "startTime": p["startTime"],
            "purpose": p["purpose"],
            "address": p["address"],
            "ani": p["ani"],
            "dnis": p["dnis"],
            "wrapupRequired": False,
            "mediaRoles": [],
            "attributes": dict(p.get("attributes", {})),
            "calls": [_call(conv, p)],
            "callbacks": [],
            "chats": [],
            "cobrowsesessions": [],
            "emails": [],
            "messages": [],
            "screenshares": [],
            "socialExpressions": [],
            "videos": [],
        }
        _optional(item, p, ("endTime", "endTime"), ("connectedTime", "connectedTime"), ("name", "name"),
                  ("aniName", "aniName"))
        if p.get("userId"):
            item["userId"] = p["userId"]
            item["userUri"] = f"/api/v2/users/{p['userId']}"
        if p.get("queueId"):
            item["queueId"] = p["queueId"]
            item["queueName"] = p["queueName"]
        participants.append(item)
    out = {
        "id": conv["id"],
        "startTime": conv["startTime"],
        "address": tel(conv["dnis"]),
        "participants": participants,
        "conversationIds": [conv["id"]],
        "maxParticipants": 10,
        "recordingState": "ACTIVE" if any(p.get("recordingActive") for p in conv["participants"]) else "NONE",
        "divisions": _division_memberships(conv),
        "selfUri": f"/api/v2/conversations/{conv['id']}",
    }
    if conv.get("endTime"):
        out["endTime"] = conv["endTime"]
    return out


def render_call_conversation(conv: dict[str, Any]) -> dict[str, Any]:
    """The CallConversation model."""
    participants = []
    for p in conv["participants"]:
        item: dict[str, Any] = {
            "id": p["id"],
            "address": p["address"],
            "startTime": p["startTime"],
            "purpose": p["purpose"],
            "state": _state(p),
            "direction": p["direction"],
            "held": False,
            "wrapupRequired": False,
            "mediaRoles": [],
            "attributes": dict(p.get("attributes", {})),
            "provider": "Edge",
            "muted": False,
            "confined": False,
            "recording": bool(p.get("recordingId")),
            "recordingState": "active" if p.get("recordingActive") else "none",
            "ani": p["ani"],
            "dnis": p["dnis"],
            "securePause": False,
        }
        _optional(item, p, ("startAlertingTime", "startAlertingTime"), ("connectedTime", "connectedTime"),
                  ("endTime", "endTime"), ("disconnectType", "disconnectType"), ("name", "name"))
        if p.get("userId"):
            item["user"] = {"id": p["userId"], "selfUri": f"/api/v2/users/{p['userId']}"}
        if p.get("queueId"):
            item["queue"] = {"id": p["queueId"], "selfUri": f"/api/v2/routing/queues/{p['queueId']}"}
        participants.append(item)
    recording = any(p.get("recordingActive") for p in conv["participants"])
    return {
        "id": conv["id"],
        "participants": participants,
        "otherMediaUris": [],
        "recentTransfers": [],
        "divisions": _division_memberships(conv),
        "recordingState": "active" if recording else "none",
        "maxParticipants": 10,
        "securePause": False,
        "selfUri": f"/api/v2/conversations/calls/{conv['id']}",
    }


def load(request: Request, conversation_id: str) -> dict[str, Any]:
    return stored(request, KIND, conversation_id, "Conversation")


@router.get("/api/v2/conversations")
def get_conversations(request: Request) -> dict[str, Any]:
    """The signed-in user's active conversations (ConversationEntityListing). Client
    credentials have no user: 400, as for /users/me."""
    user_id = ctx(request).tokens.user_of(getattr(request.state, "token", ""))
    if not user_id:
        raise GenesysError(400, "This request requires a user context. Client credentials cannot be used for "
                                "requests to this resource.", "bad.request")
    active = [c for c in ctx(request).store.all(KIND) if c.get("phase", "ended") != "ended"
              and any(p.get("userId") == user_id and not p.get("endTime") for p in c["participants"])]
    return {"entities": [render_conversation(c) for c in active]}


@router.get("/api/v2/conversations/{conversationId}")
def get_conversation(request: Request, conversationId: str) -> dict[str, Any]:
    return render_conversation(load(request, conversationId))


@router.get("/api/v2/conversations/calls/{conversationId}")
def get_call_conversation(request: Request, conversationId: str) -> dict[str, Any]:
    return render_call_conversation(load(request, conversationId))


def validate_attributes(raw: Any) -> dict[str, str]:
    """Participant attributes are a string-to-string map (dict(str, str) in the API)."""
    if not isinstance(raw, dict):
        raise bad_request("attributes must be an object of string values", "invalid.value")
    for key, value in raw.items():
        if not isinstance(value, str):
            raise bad_request(f"attribute {key!r} must be a string", "invalid.value")
        if not key or len(key) > 128 or len(value) > MAX_ATTRIBUTE_VALUE:
            raise bad_request(f"attribute {key[:128]!r} is too long", "invalid.value")
    return raw


@router.patch("/api/v2/conversations/calls/{conversationId}/participants/{participantId}/attributes")
async def patch_participant_attributes(request: Request, conversationId: str, participantId: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request could not be understood by the server due to malformed syntax.")
    if not isinstance(body, dict) or "attributes" not in body:
        raise bad_request("attributes is required", "invalid.value")
    attributes = validate_attributes(body["attributes"])
    store = ctx(request).store
    conv = load(request, conversationId)
    participant = next((p for p in conv["participants"] if p["id"] == participantId), None)
    if participant is None:
        raise not_found(f"Participant {participantId} not found")
    # PATCH merges: keys sent replace, keys not sent stay.
    merged = {**participant.get("attributes", {}), **attributes}
    if len(merged) > MAX_ATTRIBUTES:
        raise bad_request(f"a participant may hold at most {MAX_ATTRIBUTES} attributes", "invalid.value")
    participant["attributes"] = merged
    store.put(KIND, conv["id"], conv)
    if conv.get("phase", "ended") != "ended":
        from .notifications import publish_conversation

        publish_conversation(request.app, conv)  # a live call's topics see the change
    return {"attributes": merged}


# The analytics details query reads these same stored conversations (analytics.py): its routes
# are served with this router's.
from .analytics import router as _analytics_router  # noqa: E402

router.include_router(_analytics_router)
