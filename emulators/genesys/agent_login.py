"""Agents signing in: the authorization code grant with PKCE on the login host.

Genesys client apps and interaction widgets sign the agent in with the authorization code
grant, PKCE for browser apps (RFC 7636, S256): GET /oauth/authorize?response_type=code&
client_id&redirect_uri&state&code_challenge&code_challenge_method=S256 shows the login page
and sends the browser back to redirect_uri?code&state; POST /oauth/token with
grant_type=authorization_code, code, redirect_uri, client_id and code_verifier (no secret)
answers a bearer token for that user. The redirect URI must be one registered on the OAuth
client (here: POST /_emulator/config {"agentRedirectUris": [...]}); the code is single-use
and short-lived. The emulator's login page takes a seeded user's username and the emulator's
agent password (an emulator stand-in for the org's identity provider).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

CODE_TTL = 300.0  # seconds an authorization code stays redeemable
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "description": description, "error_description": description},
                        status_code=status, headers={"Access-Control-Allow-Origin": "*"})


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class AgentLogin:
    def __init__(self, client_id: str, password: str) -> None:
        self.client_id = client_id
        self.password = password
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _check(self, params: dict[str, str], redirect_uris: list[str]) -> str | None:
        """What is wrong with an authorize request, or None."""
        if params.get("client_id") != self.client_id:
            return "client not found"
        if params.get("redirect_uri") not in redirect_uris:
            return "redirect_uri is not registered on this client"
        if params.get("response_type") != "code":
            return "response_type must be code"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "code_challenge with code_challenge_method=S256 is required"
        return None

    def authorize_page(self, params: dict[str, str], redirect_uris: list[str], error: str = "") -> Response:
        problem = self._check(params, redirect_uris)
        if problem:
            # Never redirect to an unverified redirect_uri: an error page instead.
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", status_code=400)
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items() if k in
                         ("client_id", "redirect_uri", "response_type", "state", "code_challenge",
                          "code_challenge_method"))
        return HTMLResponse(
            "<!doctype html><title>Genesys Cloud login</title><form method=post action=/oauth/authorize>"
            f"{hidden}<p>{html.escape(error)}</p>"
            "<label>Username <input name=username id=username></label>"
            "<label>Password <input name=password id=password type=password></label>"
            "<button type=submit id=login>Log in</button></form>")

    def sign_in(self, form: dict[str, str], redirect_uris: list[str], users: list[dict[str, Any]]) -> Response:
        problem = self._check(form, redirect_uris)
        if problem:
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", status_code=400)
        user = next((u for u in users if u.get("username", "").lower() == form.get("username", "").lower()
                     and u.get("state") == "active"), None)
        if user is None or not secrets.compare_digest(form.get("password", ""), self.password):
            return self.authorize_page(form, redirect_uris, "Invalid username or password")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = {"userId": user["id"], "challenge": form["code_challenge"],
                                 "redirectUri": form["redirect_uri"], "expires": time.time() + CODE_TTL}
        query = {"code": code, **({"state": form["state"]} if form.get("state") else {})}
        return RedirectResponse(f"{form['redirect_uri']}?{urlencode(query)}", status_code=302)

    def redeem(self, form: dict[str, str]) -> str | JSONResponse:
        """The user id an authorization_code grant is for, or the RFC 6749 error to answer."""
        if form.get("client_id") != self.client_id:
            return _oauth_error(400, "invalid_client", "client not found")
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # single use, even when refused
        if grant is None or grant["expires"] < time.time():
            return _oauth_error(400, "invalid_grant", "authorization code is invalid or expired")
        if form.get("redirect_uri") != grant["redirectUri"]:
            return _oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.match(verifier) or not secrets.compare_digest(s256(verifier), grant["challenge"]):
            return _oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        return grant["userId"]
