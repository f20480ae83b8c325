"""Signing an agent in through the Genesys emulator's authorization code + PKCE endpoints,
the way starter/static/agent-signin.js does in a browser (for tests without one)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlparse

import httpx

AGENT_PASSWORD = "callbridge-agent"  # the emulator's login page password for its users


def register_redirect_uri(genesys, stack) -> str:
    """Register the starter's sign-in page on the emulator's agents' OAuth client."""
    redirect = f"{stack.starter_url}/agent/signed-in"
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"agentRedirectUris": [redirect]}).raise_for_status()
    return redirect


def agents(genesys, count: int = 5) -> list[dict]:
    token = httpx.post(f"{genesys.api_url}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(genesys.client_id, genesys.client_secret)).json()["access_token"]
    return httpx.get(f"{genesys.api_url}/api/v2/users", params={"pageSize": count},
                     headers={"Authorization": f"Bearer {token}"}).json()["entities"]


def sign_in(genesys, stack, username: str) -> str:
    """An agent's access token, by the authorization code grant with PKCE, as the starter's
    sign-in page gets one."""
    config = httpx.get(f"{stack.starter_url}/agent/config").json()
    return sign_in_at(config["loginUrl"], config["clientId"], config["redirectUri"], username)


def user_token(genesys, username: str) -> str:
    """An agent's token without a starter: a redirect URI of the test's own, added to the
    registered ones."""
    redirect = "http://127.0.0.1/test-sign-in"
    registered = httpx.get(f"{genesys.api_url}/_emulator/config").json()["agentRedirectUris"]
    httpx.post(f"{genesys.api_url}/_emulator/config",
               json={"agentRedirectUris": sorted({*registered, redirect})}).raise_for_status()
    return sign_in_at(genesys.api_url, "callbridge-agents", redirect, username)


def sign_in_at(login_url: str, client_id: str, redirect_uri: str, username: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"}
    form = httpx.post(f"{login_url}/oauth/authorize", data={**params, "username": username, "password": AGENT_PASSWORD})
    assert form.status_code == 302, form.text
    code = parse_qs(urlparse(form.headers["location"]).query)["code"][0]
    token = httpx.post(f"{login_url}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "client_id": client_id, "code_verifier": verifier})
    assert token.status_code == 200, token.text
    return token.json()["access_token"]
