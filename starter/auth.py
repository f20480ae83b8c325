"""Credentials as a Genesys data action can send them: HTTP Basic or a bearer token."""

from __future__ import annotations

import base64
import hmac

from fastapi import HTTPException, Request

from callbridge.settings import Settings


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def require_data_action_auth(settings: Settings):
    user = settings.screenpop_username
    password = settings.screenpop_password.get_secret_value()
    token = settings.screenpop_bearer_token.get_secret_value() if settings.screenpop_bearer_token else None

    def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                given_user, _, given_password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                given_user = given_password = ""
            # Both compared, always, so timing says nothing about which one was wrong.
            if _equal(given_user, user) & _equal(given_password, password):
                return
        elif scheme.lower() == "bearer" and token and _equal(value, token):
            return
        raise HTTPException(401, detail="unauthorized", headers={"WWW-Authenticate": 'Basic realm="callbridge"'})

    return check
