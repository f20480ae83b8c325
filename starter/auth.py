"""HTTP Basic (or bearer) credentials for the starter's routes, compared in constant time.

Genesys data actions send Basic or a bearer token; the desktop page and the admin API use
Basic, which browsers handle natively.
"""

from __future__ import annotations

import base64
import hmac
from typing import Callable

from fastapi import HTTPException, Request

from callbridge.settings import Settings


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _basic_matches(value: str, username: str, password: str) -> bool:
    try:
        given_user, _, given_password = base64.b64decode(value, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        given_user = given_password = ""
    # Both compared, always, so timing says nothing about which one was wrong.
    return _equal(given_user, username) & _equal(given_password, password)


def require_credentials(username: str, password: str, *, bearer_token: str | None = None,
                        realm: str = "callbridge") -> Callable[[Request], None]:
    """A FastAPI dependency accepting these Basic credentials (or this bearer token); else 401."""

    def check(request: Request) -> None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            if _basic_matches(value, username, password):
                return
        elif scheme.lower() == "bearer" and bearer_token and _equal(value, bearer_token):
            return
        raise HTTPException(401, detail="unauthorized", headers={"WWW-Authenticate": f'Basic realm="{realm}"'})

    return check


def require_data_action_auth(settings: Settings) -> Callable[[Request], None]:
    token = settings.screenpop_bearer_token.get_secret_value() if settings.screenpop_bearer_token else None
    return require_credentials(settings.screenpop_username, settings.screenpop_password.get_secret_value(),
                               bearer_token=token)


def require_desktop_auth(settings: Settings) -> Callable[[Request], None]:
    return require_credentials(settings.desktop_username, settings.desktop_password.get_secret_value(),
                               realm="callbridge desktop")


def require_admin_auth(settings: Settings) -> Callable[[Request], None]:
    return require_credentials(settings.admin_username, settings.admin_password.get_secret_value(),
                               realm="callbridge-admin")


def events_authorized(request: Request, settings: Settings) -> bool:
    """The call-ended intake's credentials: HTTP Basic (the data action's integration credential,
    or an EventBridge connection's Basic auth) or the API-key header (an EventBridge connection's
    API-key auth). An empty password or key is never accepted."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    password = settings.events_password.get_secret_value()
    if scheme.lower() == "basic" and password and _basic_matches(value, settings.events_username, password):
        return True
    key = settings.events_api_key.get_secret_value() if settings.events_api_key else ""
    given_key = request.headers.get(settings.events_api_key_header)
    return bool(key) and given_key is not None and _equal(given_key, key)
