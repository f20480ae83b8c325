"""The starter's Temporal client, connected lazily so the starter can come up first."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from callbridge.core.settings import Settings
from callbridge.core.temporal import connect


class TemporalUnavailable(RuntimeError):
    pass


class TemporalLink:
    def __init__(self, settings: Settings, connect_timeout: float = 3.0) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._timeout = connect_timeout

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(connect(self._settings), self._timeout)
                except (asyncio.TimeoutError, RuntimeError, OSError) as exc:
                    raise TemporalUnavailable(str(exc)) from None
            return self._client
