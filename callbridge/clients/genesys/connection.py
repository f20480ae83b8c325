"""A Genesys Cloud Platform API v2 client: OAuth client credentials over httpx.

Genesys allows each token a budget of requests per minute (300 by default) and answers 429
with Retry-After beyond it. The client paces itself to the budget (a sliding one-minute
window, per connection = per token) and waits out a 429's Retry-After before retrying, so a
large sync run slows down to the budget instead of failing.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import httpx

from callbridge.clients.transport_errors import scrubbed

from callbridge.clients.metering import count_genesys
from callbridge.core.metrics import record_api_response
from callbridge.core.settings import Settings


async def _count_response(resp: httpx.Response) -> None:
    record_api_response("genesys", resp.status_code)
    count_genesys(resp.status_code)


# POSTs that only read: bulk fetch, identifier lookup, analytics queries.
_READING_POSTS = ("/externalcontacts/bulk/contacts", "/identifierlookup/contacts", "/details/query")


class RequestBudget:
    """At most `per_minute` requests in any sliding minute (0: no pacing)."""

    WINDOW = 60.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.per_minute <= 0:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self.WINDOW:
                    self._sent.popleft()
                if len(self._sent) < self.per_minute:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self.WINDOW - now)


def retry_after_seconds(resp: httpx.Response, default: float = 1.0) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", default)))
    except ValueError:
        return default


class GenesysConnection:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Idle connections are dropped before a server would (uvicorn closes them after 5 s): a
        # create sent on a connection the server just closed fails and is not resent.
        self._http = httpx.AsyncClient(base_url=settings.genesys_api_url.rstrip("/"), timeout=10.0,
                                       limits=httpx.Limits(keepalive_expiry=4.0))
        self._http.event_hooks["response"].append(_count_response)
        self._token: str | None = None
        self._lock = asyncio.Lock()
        self._budget = RequestBudget(settings.genesys_requests_per_minute)

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
        """A Platform API call with a bearer token, paced to the budget.

        A 401 means the token expired: fetch one, retry once. A 429 is waited out (Retry-After)
        and retried, a few times; after that the caller sees the 429 (its activity retries).
        """
        if timeout is not None:
            kwargs["timeout"] = timeout
        token = await self._bearer()
        for _ in range(self._settings.genesys_max_429_retries + 1):
            await self._budget.acquire()
            resp = await self._send(method, path, token, **kwargs)
            if resp.status_code == 401:
                token = await self._bearer(stale=token)
                await self._budget.acquire()
                resp = await self._send(method, path, token, **kwargs)
            if resp.status_code != 429:
                return resp
            await asyncio.sleep(retry_after_seconds(resp))
        return resp

    async def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        """One request; a dropped connection (a keep-alive the server closed while we waited on
        the budget) is retried at once when the request is safe to send twice — reads, PUTs,
        DELETEs and the POSTs that only read. A create is left to its activity's retry, which
        looks for what the first attempt may have made."""
        safe = method in ("GET", "PUT", "DELETE") or path.endswith(_READING_POSTS)
        for attempt in range(3 if safe else 1):
            try:
                return await self._http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError) as exc:
                if attempt == (2 if safe else 0):
                    raise scrubbed(exc, "Genesys") from None  # its URL may carry a number
                await asyncio.sleep(0.2 * (attempt + 1))
            except httpx.TransportError as exc:
                raise scrubbed(exc, "Genesys") from None
        raise AssertionError("unreachable")

    async def get(self, path: str, timeout: float | None = None, **params: Any) -> httpx.Response:
        return await self.request("GET", path, timeout=timeout, params=params or None)

    async def aclose(self) -> None:
        await self._http.aclose()
