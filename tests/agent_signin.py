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
    """An agent's access token, by the authorization code grant with PKCE."""
    config = httpx.get(f"{stack.starter_url}/agent/config").json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params = {"response_type": "code", "client_id": config["clientId"], "redirect_uri": config["redirectUri"],
              "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"}
    form = httpx.post(f"{config['loginUrl']}/oauth/authorize",
                      data={**params, "username": username, "password": AGENT_PASSWORD})
    assert form.status_code == 302, form.text
    code = parse_qs(urlparse(form.headers["location"]).query)["code"][0]
    token = httpx.post(f"{config['loginUrl']}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": config["redirectUri"],
        "client_id": config["clientId"], "code_verifier": verifier})
    assert token.status_code == 200, token.text
    return token.json()["access_token"]
