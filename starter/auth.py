"""HTTP Basic (or bearer) credentials for the starter's routes, compared in constant time.

Genesys data actions send Basic or a bearer token; the admin API uses Basic, which browsers
handle natively. Agents sign in with Genesys instead (starter/agent_auth.py).
"""

from __future__ import annotations

import base64
import hmac
from typing import Callable

from fastapi import HTTPException, Request

from callbridge.settings import Settings


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def require_credentials(username: str, password: str, *, bearer_token: str | None = None,
                        realm: str = "callbridge") -> Callable[[Request], None]:
    """A FastAPI dependency accepting these Basic credentials (or this bearer token); else 401."""

    def check(request: Request) -> None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                given_user, _, given_password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                given_user = given_password = ""
            # Both compared, always, so timing says nothing about which one was wrong.
            if _equal(given_user, username) & _equal(given_password, password):
                return
        elif scheme.lower() == "bearer" and bearer_token and _equal(value, bearer_token):
            return
        raise HTTPException(401, detail="unauthorized", headers={"WWW-Authenticate": f'Basic realm="{realm}"'})

    return check


def require_data_action_auth(settings: Settings) -> Callable[[Request], None]:
    token = settings.screenpop_bearer_token.get_secret_value() if settings.screenpop_bearer_token else None
    return require_credentials(settings.screenpop_username, settings.screenpop_password.get_secret_value(),
                               bearer_token=token)


def require_admin_auth(settings: Settings) -> Callable[[Request], None]:
    return require_credentials(settings.admin_username, settings.admin_password.get_secret_value(),
                               realm="callbridge-admin")
