"""Notifications: channels, topic subscriptions, and the WebSocket that streams events.

Envelope on the socket: {"topicName", "version", "eventBody", "metadata"}. Heartbeats come
as topic "channel.metadata" with eventBody {"message": "WebSocket Heartbeat"} every 30 s
(heartbeatSeconds in /_emulator/config), and a client's {"message": "ping"} is answered with
{"message": "pong"}.
Topics emitted at every step of a simulated call (see simulator.py), with the event body of
the SDK's model for each topic:
  v2.users.{userId}.conversations.calls         ConversationCallEventTopicCallConversation
  v2.users.{userId}.conversations               ConversationEventTopicConversation
  v2.routing.queues.{queueId}.conversations.calls  QueueConversationCallEventTopicCallConversation
  v2.routing.queues.{queueId}.conversations     QueueConversationEventTopicConversation
A user's topics fire once the user is a participant (from alerting on), a queue's once the
call is in that queue. Other topic names are refused rather than accepted and never fired;
GET /api/v2/notifications/availabletopics lists the ones served.

Limits, as the developer center's notification service page states them: 20 channels per user
and application (a 21st replaces the oldest channel without an active connection, else the
oldest), 1,000 topics per channel, and a channel lives 24 hours (POST /_emulator/config
{"channelTtlSeconds"} shortens it); before it closes a socket the server sends
`v2.system.socket_closing`. Tests close a channel's socket with or without that warning
(POST /_emulator/notifications/channels/{id}/close {"warn"}). Channels live in memory (they
also end when the emulator restarts).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect

from .context import ctx
from .errors import bad_request, not_found
from .wire import iso, new_id, now

router = APIRouter()

HEARTBEAT_SECONDS = 30.0
MAX_TOPICS = 1000
MAX_CHANNELS = 20  # per user and application
SOCKET_CLOSING = "v2.system.socket_closing"
TOPIC_PATTERNS = [
    re.compile(r"^v2\.routing\.queues\.[0-9a-f-]{36}\.conversations(\.calls)?$"),
    re.compile(r"^v2\.users\.[0-9a-f-]{36}\.conversations(\.calls)?$"),
]
PARTICIPANT_EVENT_KEYS = {
    "id", "name", "address", "startTime", "connectedTime", "endTime", "purpose", "state", "initialState", "direction",
    "disconnectType", "held", "wrapupRequired", "attributes", "provider", "muted", "confined", "recording",
    "recordingState", "ani", "dnis", "mediaRoles", "user", "queue", "securePause",
}


@dataclass
class Channel:
    id: str
    expires: str
    owner: str = ""  # the user (agent sign-in) or the OAuth client (client credentials)
    closes_at: float = float("inf")  # time.time() of its end
    created: float = field(default_factory=time.time)
    topics: list[str] = field(default_factory=list)
    sockets: set[asyncio.Queue] = field(default_factory=set)

    def close(self, warn: bool) -> None:
        """End its sockets: with `v2.system.socket_closing` first (expiry, maintenance) or not."""
        for queue in self.sockets:
            if warn:
                queue.put_nowait(json.dumps({"topicName": SOCKET_CLOSING, "version": "2",
                                             "eventBody": {"message": "Socket closing", "reason": "expiring"}}))
            queue.put_nowait(None)  # the socket loop closes on None


class Hub:
    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}

    def publish(self, topic: str, body: dict[str, Any]) -> int:
        message = json.dumps({"topicName": topic, "version": "2", "eventBody": body,
                              "metadata": {"CorrelationId": new_id()}})
        sent = 0
        for channel in self.channels.values():
            if topic in channel.topics:
                for queue in channel.sockets:
                    queue.put_nowait(message)
                    sent += 1
        return sent


def hub(request_or_socket) -> Hub:  # type: ignore[no-untyped-def]
    return request_or_socket.app.state.hub


def _channel(request: Request, channel_id: str) -> Channel:
    channel = hub(request).channels.get(channel_id)
    if channel is None:
        raise not_found(f"Channel {channel_id} not found")
    return channel


def _public(request: Request, channel: Channel) -> dict[str, Any]:
    ws = ctx(request).settings.base_url.replace("http://", "ws://", 1)
    return {"connectUri": f"{ws}/channels/{channel.id}", "id": channel.id, "expires": channel.expires}


def _topics_listing(channel: Channel) -> dict[str, Any]:
    return {"entities": [{"id": t, "state": "Permitted", "selfUri": f"/api/v2/notifications/channels/{channel.id}"
                          f"/subscriptions"} for t in channel.topics]}


def _owner(request: Request) -> str:
    token = getattr(request.state, "token", "")
    context = ctx(request)
    user = context.tokens.user_of(token)
    doc = context.store.get("token", token) or {}
    return f"user:{user}" if user else f"client:{doc.get('clientId', '')}"


@router.post("/api/v2/notifications/channels")
def create_channel(request: Request) -> dict[str, Any]:
    channels = hub(request).channels
    owner = _owner(request)
    mine = sorted((c for c in channels.values() if c.owner == owner), key=lambda c: c.created)
    if len(mine) >= MAX_CHANNELS:
        # The new channel replaces the oldest one without a connection (else the oldest).
        oldest = next((c for c in mine if not c.sockets), mine[0])
        oldest.close(warn=False)
        channels.pop(oldest.id, None)
    ttl = ctx(request).runtime.channel_ttl_seconds
    channel = Channel(id=new_id(), expires=iso(now() + timedelta(seconds=ttl)), owner=owner,
                      closes_at=time.time() + ttl)
    channels[channel.id] = channel
    return _public(request, channel)


@router.get("/api/v2/notifications/availabletopics")
def available_topics(request: Request) -> dict[str, Any]:
    """The topics this emulator serves (AvailableTopicEntityListing), as Genesys names them."""
    described = [
        ("v2.users.{id}.conversations", "A user's conversations", True),
        ("v2.users.{id}.conversations.calls", "A user's calls", True),
        ("v2.routing.queues.{id}.conversations", "Conversations in a queue", False),
        ("v2.routing.queues.{id}.conversations.calls", "Calls in a queue", False),
    ]
    return {"entities": [{"id": topic, "description": text, "requiresCurrentUserOrPermission": by_user,
                          "transports": ["All"], "topicParameters": ["id"], "visibility": "Public"}
                         for topic, text, by_user in described]}


@router.get("/api/v2/notifications/channels")
def list_channels(request: Request) -> dict[str, Any]:
    owner = _owner(request)
    return {"entities": [_public(request, c) for c in hub(request).channels.values() if c.owner == owner]}


@router.get("/api/v2/notifications/channels/{channelId}/subscriptions")
def get_subscriptions(request: Request, channelId: str) -> dict[str, Any]:
    return _topics_listing(_channel(request, channelId))


async def _topics_from(request: Request) -> list[str]:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request could not be understood by the server due to malformed syntax.")
    if not isinstance(body, list) or not all(isinstance(t, dict) and isinstance(t.get("id"), str) for t in body):
        raise bad_request("body must be a list of {\"id\": topic}", "invalid.value")
    topics = [t["id"] for t in body]
    for topic in topics:
        if not any(p.match(topic) for p in TOPIC_PATTERNS):
            raise bad_request(f"Invalid or unsupported topic: {topic}", "invalid.value")
    return topics


@router.post("/api/v2/notifications/channels/{channelId}/subscriptions")
async def add_subscriptions(request: Request, channelId: str) -> dict[str, Any]:
    channel = _channel(request, channelId)
    topics = await _topics_from(request)
    merged = channel.topics + [t for t in topics if t not in channel.topics]
    if len(merged) > MAX_TOPICS:
        raise bad_request(f"A channel may hold at most {MAX_TOPICS} topics", "invalid.value")
    channel.topics = merged
    return _topics_listing(channel)


@router.put("/api/v2/notifications/channels/{channelId}/subscriptions")
async def replace_subscriptions(request: Request, channelId: str) -> dict[str, Any]:
    channel = _channel(request, channelId)
    topics = await _topics_from(request)
    if len(topics) > MAX_TOPICS:
        raise bad_request(f"A channel may hold at most {MAX_TOPICS} topics", "invalid.value")
    channel.topics = list(dict.fromkeys(topics))
    return _topics_listing(channel)


@router.delete("/api/v2/notifications/channels/{channelId}/subscriptions")
def delete_subscriptions(request: Request, channelId: str) -> dict[str, Any]:
    _channel(request, channelId).topics = []
    return {}


@router.post("/_emulator/notifications/channels/{channelId}/close")
async def close_channel(request: Request, channelId: str) -> dict[str, Any]:
    """Test hook: end a channel as Genesys does before maintenance or at expiry (warn: true,
    `v2.system.socket_closing` first) or as a dropped connection does (warn: false)."""
    try:
        body = await request.json()
    except ValueError:
        body = {}
    channel = hub(request).channels.pop(channelId, None)
    if channel is None:
        raise not_found(f"Channel {channelId} not found")
    channel.close(warn=bool((body or {}).get("warn", True)))
    return {"closed": channelId, "sockets": len(channel.sockets)}


@router.websocket("/channels/{channelId}")
async def channel_socket(websocket: WebSocket, channelId: str) -> None:
    channel = hub(websocket).channels.get(channelId)
    if channel is None:
        await websocket.close(code=4004)
        return
    await websocket.accept()
    queue: asyncio.Queue = asyncio.Queue()
    channel.sockets.add(queue)

    async def reader() -> None:
        while True:
            text = await websocket.receive_text()
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("message") == "ping":
                queue.put_nowait(json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "pong"}}))

    read_task = asyncio.create_task(reader())
    try:
        while not read_task.done():
            if time.time() >= channel.closes_at:
                # The channel's life is over: warn, close, forget it (resubscribing gets a 404).
                hub(websocket).channels.pop(channel.id, None)
                channel.close(warn=True)
            # Wake on an event, on the client going away, or when a heartbeat is due.
            get_task = asyncio.create_task(queue.get())
            wait = min(ctx(websocket).runtime.heartbeat_seconds, max(0.01, channel.closes_at - time.time()))
            done, _ = await asyncio.wait({get_task, read_task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if get_task in done:
                message = get_task.result()
                if message is None:
                    await websocket.close()
                    break
                await websocket.send_text(message)
                continue
            get_task.cancel()
            if not done and time.time() < channel.closes_at:
                await websocket.send_text(json.dumps({"topicName": "channel.metadata",
                                                      "eventBody": {"message": "WebSocket Heartbeat"}}))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        read_task.cancel()
        channel.sockets.discard(queue)


def call_event_body(call_conversation: dict[str, Any]) -> dict[str, Any]:
    """A CallConversation rendered as the conversations.calls topic's event body."""
    participants = []
    for p in call_conversation["participants"]:
        item = {k: v for k, v in p.items() if k in PARTICIPANT_EVENT_KEYS}
        for ref in ("user", "queue"):
            if ref in item:
                item[ref] = {"id": item[ref]["id"]}
        participants.append(item)
    return {
        "id": call_conversation["id"],
        "participants": participants,
        "otherMediaUris": [],
        "divisions": [{"division": {"id": d["division"]["id"]}, "entities": [{"id": e["id"]} for e in d["entities"]]}
                      for d in call_conversation["divisions"]],
        "recordingState": "none",
        "securePause": False,
        "maxParticipants": call_conversation["maxParticipants"],
    }


# ConversationEventTopicParticipant / ConversationEventTopicCall keep fewer keys than the
# REST Participant / Call models (no startTime, ani, dnis, segments, recordingId on them).
CONVERSATION_PARTICIPANT_KEYS = {
    "id", "connectedTime", "endTime", "userId", "name", "queueId", "purpose", "address", "wrapupRequired",
    "mediaRoles", "attributes",
}
CONVERSATION_CALL_KEYS = {
    "id", "state", "initialState", "recording", "recordingState", "muted", "confined", "held", "securePause",
    "disconnectType", "direction", "provider", "connectedTime", "disconnectedTime", "afterCallWorkRequired",
}


def conversation_event_body(conversation: dict[str, Any]) -> dict[str, Any]:
    """A Conversation rendered as the conversations topic's event body."""
    participants = []
    for p in conversation["participants"]:
        item = {k: v for k, v in p.items() if k in CONVERSATION_PARTICIPANT_KEYS}
        item["wrapupExpected"] = False
        item["calls"] = [{k: v for k, v in c.items() if k in CONVERSATION_CALL_KEYS} for c in p["calls"]]
        for media in ("callbacks", "chats", "cobrowsesessions", "emails", "messages", "screenshares",
                      "socialExpressions", "videos"):
            item[media] = []
        participants.append(item)
    return {
        "id": conversation["id"],
        "maxParticipants": conversation["maxParticipants"],
        "participants": participants,
        "recentTransfers": [],
        "recordingState": conversation["recordingState"].lower(),
        "address": conversation["address"],
        "securePause": False,
        "divisions": [{"division": {"id": d["division"]["id"]}, "entities": [{"id": e["id"]} for e in d["entities"]]}
                      for d in conversation["divisions"]],
    }


def topics_for(conv: dict[str, Any]) -> list[str]:
    topics = []
    if conv.get("queueId"):
        topics += [f"v2.routing.queues.{conv['queueId']}.conversations.calls",
                   f"v2.routing.queues.{conv['queueId']}.conversations"]
    for user_id in dict.fromkeys(p["userId"] for p in conv["participants"] if p.get("userId")):
        topics += [f"v2.users.{user_id}.conversations.calls", f"v2.users.{user_id}.conversations"]
    return topics


def publish_conversation(app, conv: dict[str, Any]) -> int:  # type: ignore[no-untyped-def]
    """Fire every topic the conversation touches now, with its current state. Event loop only."""
    from .conversations import render_call_conversation, render_conversation

    calls_body = call_event_body(render_call_conversation(conv))
    conversation_body = conversation_event_body(render_conversation(conv))
    sent = 0
    for topic in topics_for(conv):
        sent += app.state.hub.publish(topic, calls_body if topic.endswith(".calls") else conversation_body)
    return sent


# The name the instant simulator and older callers use.
publish_call = publish_conversation
