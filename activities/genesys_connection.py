"""A Genesys Cloud Platform API v2 client: OAuth client credentials over httpx."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from callbridge.metrics import record_api_response
from callbridge.settings import Settings


async def _count_response(resp: httpx.Response) -> None:
    record_api_response("genesys", resp.status_code)


class GenesysConnection:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http = httpx.AsyncClient(base_url=settings.genesys_api_url.rstrip("/"), timeout=10.0)
        self._http.event_hooks["response"].append(_count_response)
        self._token: str | None = None
        self._lock = asyncio.Lock()

    async def _fetch_token(self) -> str:
        s = self._settings
        resp = await self._http.post(
            f"{s.genesys_login_url.rstrip('/')}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(s.genesys_client_id, s.genesys_client_secret.get_secret_value()),
        )
        resp.raise_for_status()
        return resp.json()["access_token"]

    async def _bearer(self, stale: str | None = None) -> str:
        async with self._lock:
            if self._token is None or self._token == stale:
                self._token = await self._fetch_token()
            return self._token

    async def request(self, method: str, path: str, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        """A Platform API call with a bearer token; a 401 means the token expired: fetch one, retry once."""
        if timeout is not None:
            kwargs["timeout"] = timeout
        token = await self._bearer()
        resp = await self._http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if resp.status_code == 401:
            token = await self._bearer(stale=token)
            resp = await self._http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return resp

    async def get(self, path: str, timeout: float | None = None, **params: Any) -> httpx.Response:
        return await self.request("GET", path, timeout=timeout, params=params or None)

    async def aclose(self) -> None:
        await self._http.aclose()
