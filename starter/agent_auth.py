"""Agents signed in as themselves: the page holds the agent's own Genesys token, the starter
checks it with Genesys.

Browser apps in Genesys (client apps, interaction widgets) sign the user in with the
authorization code grant and PKCE against the login host (/oauth/authorize, /oauth/token):
starter/static/agent-signin.js does that in the page; the token stays in the tab's
sessionStorage and comes to the starter as a bearer header (never in a URL). The starter asks
Genesys who it belongs to (GET /api/v2/users/me) and acts for that user only. Answers are
cached a minute per token, so a page's requests cost Genesys one call a minute.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable, Awaitable

import httpx
import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from callbridge.core.settings import Settings

log = structlog.get_logger("callbridge.agent_auth")
STATIC = Path(__file__).parent / "static"
CACHE_SECONDS = 60.0


class AgentVerifier:
    def __init__(self, settings: Settings) -> None:
        self._url = f"{settings.genesys_api_url.rstrip('/')}/api/v2/users/me"
        self._http = httpx.AsyncClient(timeout=10)
        self._known: dict[str, tuple[str, float]] = {}  # sha256(token) -> (user id, checked at)

    async def agent_id(self, token: str) -> str:
        key = hashlib.sha256(token.encode()).hexdigest()
        known = self._known.get(key)
        if known and time.monotonic() - known[1] < CACHE_SECONDS:
            return known[0]
        try:
            resp = await self._http.get(self._url, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            log.warning("agent token check failed", error=type(exc).__name__)
            raise HTTPException(503, "Genesys unavailable", headers={"Retry-After": "5"}) from None
        if resp.status_code in (400, 401, 403):
            # 400: a token without a user (client credentials); 401: expired or unknown.
            raise HTTPException(401, "sign in to Genesys Cloud as an agent",
                                headers={"WWW-Authenticate": 'Bearer realm="callbridge"'})
        if resp.status_code >= 400:
            log.warning("agent token check refused", status=resp.status_code)
            raise HTTPException(503, "Genesys refused the check", headers={"Retry-After": "5"})
        user_id = resp.json().get("id")
        if not isinstance(user_id, str) or not user_id:
            raise HTTPException(502, "Genesys answered without a user id")
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key] = (user_id, time.monotonic())
        return user_id


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "sign in to Genesys Cloud as an agent",
                            headers={"WWW-Authenticate": 'Bearer realm="callbridge"'})
    return token.strip()


def require_agent(verifier: AgentVerifier) -> Callable[[Request], Awaitable[str]]:
    """A FastAPI dependency: the signed-in agent's Genesys user id, else 401."""

    async def check(request: Request) -> str:
        return await verifier.agent_id(bearer_token(request))

    return check


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/agent", tags=["agent sign-in"])

    @router.get("/config")
    async def config() -> dict[str, str]:
        """What the page needs to start the sign-in: public values only."""
        return {"loginUrl": settings.genesys_login_url.rstrip("/"), "clientId": settings.genesys_agent_client_id,
                "redirectUri": settings.agent_redirect_uri}

    @router.get("/signed-in", include_in_schema=False)
    async def signed_in() -> FileResponse:
        return FileResponse(STATIC / "signed-in.html", media_type="text/html")

    @router.get("/signin.js", include_in_schema=False)
    async def script() -> FileResponse:
        return FileResponse(STATIC / "agent-signin.js", media_type="text/javascript")

    return router
