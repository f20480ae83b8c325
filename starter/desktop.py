"""The agent desktop extension: pops the caller's CRM record when a call alerts.

The page (`/desktop/?agentId=…`, embeddable as a Genesys client app or interaction widget)
never holds a Genesys token: the starter subscribes to the agent's conversation topics on a
Genesys notification channel with its own client credentials and relays the few fields the
page needs as Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import structlog
import websockets
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse, StreamingResponse

from activities.genesys_connection import GenesysConnection
from callbridge.phone import to_e164
from callbridge.settings import Settings
from callbridge.store import caller_index
from callbridge.store.db import get_engine
from starter.auth import require_desktop_auth

log = structlog.get_logger("callbridge.desktop")
PAGE = Path(__file__).parent / "static" / "desktop.html"
_USER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
ATTRIBUTES = ("contact_id", "contact_name", "account_id", "account_name", "customer_tier")


def desktop_event(body: dict[str, Any], agent_id: str) -> dict[str, Any] | None:
    """The page's view of a conversation event: this agent's state and the caller's attributes."""
    participants = body.get("participants") or []
    agent = next((p for p in participants if p.get("userId") == agent_id
                  or (p.get("user") or {}).get("id") == agent_id), None)
    if agent is None:
        return None
    customer = next((p for p in participants if p.get("purpose") in ("customer", "external")), {})
    attributes: dict[str, str] = {}
    for p in participants:  # the flow sets them on the customer; some orgs copy them around
        attributes.update({k: v for k, v in (p.get("attributes") or {}).items() if k in ATTRIBUTES})
    ani = customer.get("address") or customer.get("ani") or ""
    # conversations.calls events carry the leg's state; conversations events, per call.
    state = agent.get("state") or ((agent.get("calls") or [{}])[-1]).get("state")
    return {
        "conversationId": body.get("id"),
        "state": state,
        "attributes": attributes,
        "ani": to_e164(ani.removeprefix("tel:"), "US") or "",
    }


async def agent_events(genesys: GenesysConnection, agent_id: str) -> AsyncIterator[dict[str, Any]]:
    """Conversation events of one agent from a Genesys notification channel."""
    resp = await genesys.request("POST", "/api/v2/notifications/channels")
    resp.raise_for_status()
    channel = resp.json()
    topics = [{"id": f"v2.users.{agent_id}.conversations"}, {"id": f"v2.users.{agent_id}.conversations.calls"}]
    sub = await genesys.request("PUT", f"/api/v2/notifications/channels/{channel['id']}/subscriptions", json=topics)
    sub.raise_for_status()
    async with websockets.connect(channel["connectUri"]) as ws:
        yield {"type": "ready"}
        async for message in ws:
            envelope = json.loads(message)
            if envelope.get("topicName") == "channel.metadata":
                continue  # heartbeat
            event = desktop_event(envelope.get("eventBody") or {}, agent_id)
            if event is not None:
                yield {"type": "conversation", **event}


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/desktop", tags=["agent desktop"], dependencies=[Depends(require_desktop_auth(settings))])
    # One Platform API client for every page: its token is fetched once and reused until it expires.
    genesys = GenesysConnection(settings)

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")

    @router.get("/config")
    async def config() -> dict[str, str]:
        return {"recordUrl": settings.record_url_template, "searchUrl": settings.search_url_template}

    @router.get("/lookup")
    async def lookup(phone: str = Query(max_length=64)) -> dict[str, Any]:
        """Every candidate for a number, for the chooser (several matches) and the card."""
        e164 = to_e164(phone, settings.default_region)
        rows = await asyncio.to_thread(lambda: caller_index.lookup(get_engine(settings.database_url), e164)) if e164 else []
        return {"matches": [{
            "contactId": r["contact_id"], "name": " ".join(p for p in (r["first_name"], r["last_name"]) if p),
            "accountName": r["account_name"], "tier": r["tier"],
            "lastActivity": r["last_activity"].isoformat() if r["last_activity"] else None,
        } for r in rows]}

    @router.get("/conversation")
    async def conversation(conversationId: str = Query(max_length=64, pattern=_USER_ID.pattern)) -> dict[str, Any]:
        """Interaction-widget mode: Genesys passes {{gcConversationId}} in the page's URL."""
        if not _USER_ID.match(conversationId):
            raise HTTPException(422, "conversationId is not a Genesys conversation id")
        try:
            resp = await genesys.get(f"/api/v2/conversations/{conversationId}")
        except httpx.HTTPError as exc:  # Genesys unreachable: the page retries, nothing of ours broke
            log.warning("conversation read failed", error=type(exc).__name__)
            raise HTTPException(503, "Genesys unavailable", headers={"Retry-After": "5"}) from None
        if resp.status_code == 404:
            raise HTTPException(404, "no such conversation")
        if resp.status_code >= 400:
            log.warning("conversation read refused", status=resp.status_code)
            raise HTTPException(503 if resp.status_code >= 429 else 502, "Genesys refused the read",
                                headers={"Retry-After": "5"})
        body = resp.json()
        agent = next((p for p in body.get("participants", []) if p.get("purpose") == "agent"), {})
        event = desktop_event(body, agent.get("userId") or (agent.get("user") or {}).get("id") or "")
        return event or {"conversationId": conversationId, "state": None, "attributes": {}, "ani": ""}

    @router.get("/events")
    async def events(agentId: str = Query(max_length=64, pattern=_USER_ID.pattern)) -> StreamingResponse:
        if not _USER_ID.match(agentId):
            raise HTTPException(422, "agentId is not a Genesys user id")

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for event in agent_events(genesys, agentId):
                    yield f"data: {json.dumps(event)}\n\n".encode()
            except (OSError, websockets.WebSocketException, KeyError) as exc:
                log.warning("notification relay ended", error=type(exc).__name__)
                yield b'data: {"type": "error"}\n\n'

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return router
