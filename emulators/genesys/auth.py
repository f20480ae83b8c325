"""OAuth tokens (client credentials; agents' authorization code grant, agent_login.py) and
the per-token request budget.

/oauth/token is Genesys's login service: its errors are RFC 6749 bodies
({"error": "invalid_client", "description", "error_description"}), not ErrorBody.
Unknown client -> 400 "client not found"; wrong secret -> 401 "authentication failed".
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import threading
import time
from collections import deque
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import JSONResponse

from .agent_login import AgentLogin
from .errors import GenesysError
from .settings import EmulatorSettings
from .store import Store

TOKEN_KIND = "token"


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "description": description, "error_description": description},
        status_code=status,
    )


class TokenService:
    def __init__(self, store: Store, settings: EmulatorSettings, agents: "AgentLogin | None" = None) -> None:
        self.store = store
        self.settings = settings
        self.agents = agents
        self._cache: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._lock = threading.Lock()

    async def token_endpoint(self, request: Request) -> JSONResponse:
        # Parsed by hand: form-urlencoded is all the login service takes (no multipart dependency).
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, client_secret = _basic_credentials(request.headers.get("authorization"))
        if client_id is None:
            # Genesys also accepts the credentials as form fields.
            client_id = str(form.get("client_id") or "") or None
            client_secret = str(form.get("client_secret") or "") or None
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type == "authorization_code" and self.agents is not None:
            user_id = self.agents.redeem(form)
            if not isinstance(user_id, str):
                return user_id
            return self._issue(self.agents.client_id, user_id, cors=True)
        if client_id != self.settings.client_id:
            return _oauth_error(400, "invalid_client", "client not found")
        if not client_secret or not secrets.compare_digest(client_secret, self.settings.client_secret):
            return _oauth_error(401, "invalid_client", "authentication failed")
        if grant_type != "client_credentials":
            # Only the grant a server-to-server integration uses is emulated.
            return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        return self._issue(client_id, None)

    def _issue(self, client_id: str, user_id: str | None, cors: bool = False) -> JSONResponse:
        token = secrets.token_urlsafe(64)
        expires_at = time.time() + self.settings.token_ttl
        self.store.put(TOKEN_KIND, token, {"clientId": client_id, "expiresAt": expires_at, "userId": user_id})
        with self._lock:
            self._cache[token] = expires_at
        # A browser app redeems its code from the page itself: the login host allows that origin.
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": self.settings.token_ttl},
                            headers={"Access-Control-Allow-Origin": "*"} if cors else None)

    def user_of(self, token: str) -> str | None:
        """The user a token was issued to (authorization code grant), None for client credentials."""
        doc = self.store.get(TOKEN_KIND, token)
        return (doc or {}).get("userId")

    def authenticate(self, authorization: str | None) -> str:
        """The bearer token of a /api/v2 request, or a 401 GenesysError."""
        if not authorization or not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            raise GenesysError(401, "No authentication bearer token specified in authorization header.",
                               "authentication.required")
        token = authorization[7:].strip()
        with self._lock:
            expires_at = self._cache.get(token)
        if expires_at is None:
            doc = self.store.get(TOKEN_KIND, token)
            expires_at = doc["expiresAt"] if doc else None
            if expires_at is not None:
                with self._lock:
                    self._cache[token] = expires_at
        if expires_at is None or expires_at <= time.time():
            raise GenesysError(401, "Invalid login credentials.", "bad.credentials")
        return token

    def expire_all(self) -> int:
        """Test hook: make every issued token expire now (as a real org's token TTL would)."""
        count = 0
        for doc_id in self.store.ids(TOKEN_KIND):
            self.store.delete(TOKEN_KIND, doc_id)
            count += 1
        with self._lock:
            self._cache.clear()
        return count


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


class RateLimiter:
    """Sliding one-minute window per token, like Genesys's per-token API limit."""

    WINDOW = 60.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, token: str) -> None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(token, deque())
            while hits and hits[0] <= now - self.WINDOW:
                hits.popleft()
            if len(hits) >= self.per_minute:
                retry_after = max(1, math.ceil(hits[0] + self.WINDOW - now))
                raise GenesysError(
                    429,
                    f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds",
                    "too.many.requests",
                    headers={"Retry-After": str(retry_after)},
                    message_params={},
                )
            hits.append(now)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
