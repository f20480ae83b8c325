"""HTTP Basic (or bearer) credentials for the starter's routes, compared in constant time.

Genesys data actions send Basic or a bearer token; the admin API uses Basic, which browsers
handle natively. Agents sign in with Genesys instead (starter/agent_auth.py). starter/gate.py
checks the same credentials before any route; these dependencies check them again in the route
(and document them in OpenAPI).
"""

from __future__ import annotations

from typing import Callable

from fastapi import HTTPException, Request

from callbridge.core.settings import Settings
from starter.credentials import Check, any_of, api_key, basic, bearer


def require_credentials(username: str, password: str, *, bearer_token: str | None = None,
                        realm: str = "callbridge") -> Callable[[Request], None]:
    """A FastAPI dependency accepting these Basic credentials (or this bearer token); else 401."""
    accepted = any_of(basic(username, password), bearer(bearer_token))

    def check(request: Request) -> None:
        if not accepted(request.headers, request.scope):
            raise HTTPException(401, detail="unauthorized", headers={"WWW-Authenticate": f'Basic realm="{realm}"'})

    return check


def require_data_action_auth(settings: Settings) -> Callable[[Request], None]:
    token = settings.screenpop_bearer_token.get_secret_value() if settings.screenpop_bearer_token else None
    return require_credentials(settings.screenpop_username, settings.screenpop_password.get_secret_value(),
                               bearer_token=token)


def require_admin_auth(settings: Settings) -> Callable[[Request], None]:
    return require_credentials(settings.admin_username, settings.admin_password.get_secret_value(),
                               realm="callbridge-admin")


def events_credentials(settings: Settings) -> Check:
    """The call-ended intake's credentials: HTTP Basic (the data action's integration credential,
    or an EventBridge connection's Basic auth) or the API-key header (an EventBridge connection's
    API-key auth). An empty password or key is never accepted."""
    return any_of(basic(settings.events_username, settings.events_password),
                  api_key(settings.events_api_key_header, settings.events_api_key))


def events_authorized(request: Request, settings: Settings) -> bool:
    return events_credentials(settings)(request.headers, request.scope)
