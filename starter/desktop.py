"""The agent desktop extension: pops the caller's CRM record when a call alerts.

The page (`/desktop/`, a Genesys client app, or an interaction widget given
{{gcConversationId}}) signs the agent in with Genesys (starter/agent_auth.py) and shows that
agent's own calls only. It never gets a Genesys channel of its own: the starter keeps one
notification channel for all pages (starter/notification_relay.py) and relays the few
fields the page needs as Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import urlparse
from typing import Any, AsyncIterator

import httpx
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse, StreamingResponse

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.domain.phone import to_e164
from callbridge.core.settings import Settings
from callbridge.store import caller_index
from callbridge.store.db import get_engine
from starter.agent_auth import AgentVerifier, bearer_token, require_agent
from starter.notification_relay import NotificationRelay

log = structlog.get_logger("callbridge.desktop")
PAGE = Path(__file__).parent / "static" / "desktop.html"
_USER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
KEEPALIVE_SECONDS = 20.0
_closing: set[asyncio.Task] = set()  # pages' unsubscribes under way (kept referenced)
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


def build_router(settings: Settings, verifier: AgentVerifier) -> APIRouter:
    router = APIRouter(prefix="/desktop", tags=["agent desktop"])
    agent = require_agent(verifier)
    # One Platform API client, and one notification channel, for every page.
    genesys = GenesysConnection(settings)
    relay = NotificationRelay(genesys, settings.genesys_api_url, desktop_event)
    router.relay = relay  # type: ignore[attr-defined]  # tests and metrics read its counters
    http = httpx.AsyncClient(timeout=10)
    api = settings.genesys_api_url.rstrip("/")

    apps = apps_origin(settings.genesys_api_url)

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        # The page itself holds nothing: it signs the agent in before asking for anything. Who may
        # frame it (Genesys's apps) is the gate's Content-Security-Policy (starter/gate.py).
        return FileResponse(PAGE, media_type="text/html")

    @router.get("/app.js", include_in_schema=False)
    async def script() -> FileResponse:
        return FileResponse(PAGE.parent / "desktop.js", media_type="text/javascript")

    @router.get("/config")
    async def config(agent_id: str = Depends(agent)) -> dict[str, str]:
        return {"recordUrl": settings.record_url_template, "searchUrl": settings.search_url_template,
                "environment": genesys_environment(settings.genesys_api_url), "appsOrigin": apps or "",
                "agentId": agent_id}

    @router.get("/lookup")
    async def lookup(phone: str = Query(max_length=64), agent_id: str = Depends(agent)) -> dict[str, Any]:
        """Every candidate for a number, for the chooser (several matches) and the card."""
        e164 = to_e164(phone, settings.default_region)
        rows = await asyncio.to_thread(lambda: caller_index.lookup(get_engine(settings.database_url), e164)) if e164 else []
        return {"matches": [{
            "contactId": r["contact_id"], "name": " ".join(p for p in (r["first_name"], r["last_name"]) if p),
            "accountName": r["account_name"], "tier": r["tier"],
            "lastActivity": r["last_activity"].isoformat() if r["last_activity"] else None,
        } for r in rows]}

    @router.get("/conversation")
    async def conversation(conversationId: str = Query(max_length=64, pattern=_USER_ID.pattern),
                           token: str = Depends(bearer_token), agent_id: str = Depends(agent)) -> dict[str, Any]:
        """Interaction-widget mode: Genesys passes {{gcConversationId}} in the page's URL. Read
        with the agent's own token (Genesys checks they may see it), shown only if they are on it."""
        if not _USER_ID.match(conversationId):
            raise HTTPException(422, "conversationId is not a Genesys conversation id")
        try:
            resp = await http.get(f"{api}/api/v2/conversations/{conversationId}",
                                  headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:  # Genesys unreachable: the page retries, nothing of ours broke
            log.warning("conversation read failed", error=type(exc).__name__)
            raise HTTPException(503, "Genesys unavailable", headers={"Retry-After": "5"}) from None
        if resp.status_code in (403, 404):
            raise HTTPException(404, "no such conversation")
        if resp.status_code >= 400:
            log.warning("conversation read refused", status=resp.status_code)
            raise HTTPException(503 if resp.status_code >= 429 else 502, "Genesys refused the read",
                                headers={"Retry-After": "5"})
        event = desktop_event(resp.json(), agent_id)
        if event is None:
            raise HTTPException(403, "you are not on this conversation")
        return event

    @router.get("/events")
    async def events(token: str = Depends(bearer_token), agent_id: str = Depends(agent)) -> StreamingResponse:
        """This agent's conversation events, from the starter's one notification channel."""
        try:
            page = await relay.open(agent_id, token)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("notification subscribe failed", error=type(exc).__name__)
            raise HTTPException(503, "Genesys notifications unavailable", headers={"Retry-After": "5"}) from None

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b'data: {"type": "ready"}\n\n'
                while True:
                    try:
                        event = await asyncio.wait_for(page.queue.get(), timeout=KEEPALIVE_SECONDS)
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield f"data: {json.dumps(event)}\n\n".encode()
            finally:
                # Its own task: the response's cancelled scope would cancel an await made here.
                closing = asyncio.get_running_loop().create_task(relay.close(page))
                _closing.add(closing)
                closing.add_done_callback(_closing.discard)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return router


def apps_origin(api_url: str) -> str | None:
    """Where Genesys's agent UI runs for this org ({{gcHostOrigin}}): https://apps.{environment};
    None for a local emulator, which has no such UI."""
    host = urlparse(api_url).hostname or ""
    return f"https://apps.{host.removeprefix('api.')}" if host.startswith("api.") else None


def genesys_environment(api_url: str) -> str:
    """The org's environment as Genesys names it in {{gcTargetEnv}} (api.mypurecloud.com ->
    mypurecloud.com); for a local emulator, its host:port."""
    host = urlparse(api_url).netloc
    return host.removeprefix("api.")
