"""Credential checks, compared in constant time: HTTP Basic, bearer tokens, API-key headers.

Each check takes the request's headers (lower-case names) and its ASGI scope and says yes or
no; starter/gate.py runs them before any route, starter/auth.py's dependencies again in it.
"""

from __future__ import annotations

import base64
import hmac
from typing import Callable, Mapping

Headers = Mapping[str, str]
Check = Callable[[Headers, dict], bool]


def _secret(value) -> str | None:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def basic(username: str, password) -> Check:
    secret = _secret(password) or ""

    def check(headers: Headers, scope: dict) -> bool:
        kind, _, value = headers.get("authorization", "").partition(" ")
        if kind.lower() != "basic":
            return False
        try:
            user, _, given = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        # Both compared, so timing says nothing; an empty password is never a credential.
        return bool(secret) & equal(user, username) & equal(given, secret)

    return check


def bearer(token) -> Check:
    secret = _secret(token)

    def check(headers: Headers, scope: dict) -> bool:
        kind, _, value = headers.get("authorization", "").partition(" ")
        return bool(secret) and kind.lower() == "bearer" and equal(value, secret)

    return check


def api_key(header: str, key) -> Check:
    secret = _secret(key)
    name = header.lower()

    def check(headers: Headers, scope: dict) -> bool:
        return bool(secret) and name in headers and equal(headers[name], secret)

    return check


def any_of(*checks: Check) -> Check:
    return lambda headers, scope: any(c(headers, scope) for c in checks)
