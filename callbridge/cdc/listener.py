"""`callbridge listen`: subscribe to Contact and Account change events and act on each batch.

After every batch is acted on, its last replay id goes to the state store; a restart resumes
after it (CUSTOM), so a change is never lost and a batch is at most acted on again, which the
index (rebuilt from current records) and the syncs (merge against the stored base) absorb.
A replay id Salesforce refuses (invalid, or older than the 72-hour retention) means events
were missed: the polling path's incremental pass runs now, then the listener starts at LATEST.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import grpc
import structlog

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.cdc import replay
from callbridge.cdc.actions import ChangeActions
from callbridge.clients.salesforce.pubsub import PubSubClient, replay_id_refused
from callbridge.core.settings import Settings

log = structlog.get_logger("callbridge.listen")
from callbridge.clients.salesforce.pubsub import TOPICS  # noqa: E402,F401
MAX_BACKOFF_SECONDS = 30.0


class TopicListener:
    def __init__(self, topic: str, settings: Settings, pubsub: PubSubClient, actions: ChangeActions,
                 on_batch: Callable[[str, int], None] = lambda topic, n: None) -> None:
        self.topic = topic
        self._settings = settings
        self._pubsub = pubsub
        self._actions = actions
        self._on_batch = on_batch
        self.events = 0

    async def run(self) -> None:
        backoff = 1.0
        stale = False
        while True:
            try:
                meta = await self._pubsub.metadata(stale=stale)
                stale = False
                await self._follow(meta)
            except grpc.aio.AioRpcError as err:
                if replay_id_refused(err):
                    await self._actions.full_pass("replay id refused (past retention or invalid)")
                    await asyncio.to_thread(replay.forget, self._settings.database_url, self.topic)
                    continue
                stale = err.code() == grpc.StatusCode.UNAUTHENTICATED  # session expired: log in again
                log.warning("change event stream ended; reconnecting", topic=self.topic, code=err.code().name,
                            retry_in=backoff)
            except Exception as exc:  # Salesforce, Temporal or the store failed mid-batch: redo it
                # The batch's replay id wasn't stored: resubscribing acts on it again.
                log.warning("acting on changes failed; resubscribing", topic=self.topic,
                            error=type(exc).__name__, retry_in=backoff)
                await self._cover_unanchored_batch()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _cover_unanchored_batch(self) -> None:
        """A first batch that failed before any replay id was stored can't be replayed (the
        subscription started at LATEST): the incremental pass covers it instead."""
        try:
            if await asyncio.to_thread(replay.load, self._settings.database_url, self.topic) is None:
                await self._actions.full_pass("a batch failed before any replay id was stored")
        except Exception as exc:  # the next failure tries again
            log.warning("incremental pass not started", topic=self.topic, error=type(exc).__name__)

    async def _follow(self, meta) -> None:
        db = self._settings.database_url
        start = await asyncio.to_thread(replay.load, db, self.topic)
        await self._pubsub.topic(self.topic, meta)  # fails early on a topic we can't subscribe to
        log.info("subscribed", topic=self.topic, resume=bool(start))
        async for response in self._pubsub.subscribe(self.topic, start, meta):
            if response.events:
                changes = [await self._pubsub.decode(e, meta) for e in response.events]
                await self._actions.apply(changes)
                last = response.events[-1].replay_id
                self.events += len(changes)
                self._on_batch(self.topic, len(changes))
            else:
                last = response.latest_replay_id  # keepalive: the stream's position
            if last:
                await asyncio.to_thread(replay.save, db, self.topic, last)


async def listen(settings: Settings, on_batch: Callable[[str, int], None] = lambda topic, n: None) -> None:
    from callbridge.core.temporal import connect

    temporal = await connect(settings)
    connection = SalesforceConnection(settings)
    pubsub = PubSubClient(settings, connection)
    actions = ChangeActions(settings, connection, temporal)
    try:
        await asyncio.gather(*(TopicListener(t, settings, pubsub, actions, on_batch).run() for t in TOPICS))
    finally:
        await pubsub.close()
