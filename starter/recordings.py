"""Lasting recording links: /recordings/{conversationId}/{recordingId}, the link call logging
puts in a Task.

Genesys media URIs are pre-signed and expire (60 minutes by default), so the Task holds this
URL instead. Opening it signs the agent in with Genesys (starter/agent_auth.py); the page
then asks /media, which reads the recording from Genesys with the agent's own token, so
Genesys decides whether this agent may listen, and answers a media URI issued just now. The
page goes only to a URI Genesys answered (no redirect target is ever taken from the request);
the URL carries ids only, never a caller's name or number.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import structlog
from fastapi import APIRouter, Depends, HTTPException, Path as PathParam
from fastapi.responses import FileResponse

from callbridge.core.settings import Settings
from starter.agent_auth import STATIC, AgentVerifier, bearer_token, require_agent

log = structlog.get_logger("callbridge.recordings")
GENESYS_ID = r"^[A-Za-z0-9-]{1,64}$"


def build_router(settings: Settings, verifier: AgentVerifier) -> APIRouter:
    router = APIRouter(prefix="/recordings", tags=["recordings"])
    http = httpx.AsyncClient(timeout=15)
    api = settings.genesys_api_url.rstrip("/")

    @router.get("/{conversationId}/{recordingId}", include_in_schema=False)
    async def page(conversationId: str = PathParam(pattern=GENESYS_ID),
                   recordingId: str = PathParam(pattern=GENESYS_ID)) -> FileResponse:
        return FileResponse(STATIC / "recording.html", media_type="text/html",
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    @router.get("/{conversationId}/{recordingId}/media")
    async def media(conversationId: str = PathParam(pattern=GENESYS_ID),
                    recordingId: str = PathParam(pattern=GENESYS_ID),
                    token: str = Depends(bearer_token),
                    agent_id: str = Depends(require_agent(verifier))) -> dict[str, str]:
        """A fresh media URI, read from Genesys with the agent's own token."""
        path = f"/api/v2/conversations/{quote(conversationId, safe='')}/recordings/{quote(recordingId, safe='')}"
        try:
            resp = await http.get(f"{api}{path}", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            log.warning("recording read failed", error=type(exc).__name__)
            raise HTTPException(503, "Genesys unavailable", headers={"Retry-After": "5"}) from None
        if resp.status_code in (401, 403):
            raise HTTPException(403, "Genesys does not let you listen to this recording")
        if resp.status_code == 404:
            # Never made, or deleted since (retention policy, an erasure request).
            raise HTTPException(404, "this recording is no longer available")
        if resp.status_code == 202:
            raise HTTPException(409, "Genesys is still processing this recording; try again in a minute",
                                headers={"Retry-After": "60"})
        if resp.status_code >= 400:
            log.warning("recording read refused", status=resp.status_code)
            raise HTTPException(502, "Genesys refused the recording read")
        uris = [m.get("mediaUri") for m in (resp.json().get("mediaUris") or {}).values() if isinstance(m, dict)]
        uri = next((u for u in uris if isinstance(u, str) and u.startswith(("https://", "http://"))), None)
        if uri is None:
            raise HTTPException(404, "this recording has no media")
        log.info("recording opened", agent_id=agent_id, conversation_id=conversationId)
        return {"mediaUri": uri}

    return router
