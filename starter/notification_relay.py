"""One Genesys notification channel for every agent page, fanned out.

Genesys allows 20 channels per user and application and 1,000 topics per channel, a channel
lives 24 hours and says `v2.system.socket_closing` before it ends (docs: the developer
center's notification service page). So the starter keeps one channel for all open agent
pages (another only past 1,000 topics), subscribes an agent's two topics when their first page
opens and drops them when their last page closes, and renews a channel that ends (warning,
expiry, dropped socket): a new channel, the same topics, then each agent's active
conversations re-read with their own token, so an alerting call in the gap is not lost.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
import websockets

from callbridge.clients.genesys.connection import GenesysConnection

log = structlog.get_logger("callbridge.desktop")
MAX_TOPICS = 1000
SOCKET_CLOSING = "v2.system.socket_closing"
_USER_TOPIC = re.compile(r"^v2\.users\.([A-Za-z0-9-]+)\.conversations(\.calls)?$")


def agent_topics(agent_id: str) -> list[str]:
    return [f"v2.users.{agent_id}.conversations", f"v2.users.{agent_id}.conversations.calls"]


@dataclass(eq=False)
class Page:
    """One open desktop page: its agent, the agent's token (to catch up after a reconnect)."""

    agent_id: str
    token: str
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


@dataclass(eq=False)
class Link:
    """One notification channel and its socket."""

    id: str = ""
    connect_uri: str = ""
    topics: set[str] = field(default_factory=set)
    task: asyncio.Task | None = None


class NotificationRelay:
    def __init__(self, genesys: GenesysConnection, api_url: str, desktop_event) -> None:  # type: ignore[no-untyped-def]
        self._genesys = genesys
        self._api = api_url.rstrip("/")
        self._event = desktop_event  # (event body, agent id) -> the page's view, or None
        self._pages: dict[str, set[Page]] = {}
        self._links: list[Link] = []
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=10)
        self.renewals = 0  # channels renewed (metrics, tests)

    @property
    def channels(self) -> int:
        return len(self._links)

    async def open(self, agent_id: str, token: str) -> Page:
        page = Page(agent_id, token)
        async with self._lock:
            pages = self._pages.setdefault(agent_id, set())
            pages.add(page)
            if len(pages) == 1:
                try:
                    await self._subscribe(agent_id)
                except BaseException:
                    pages.discard(page)
                    if not pages:
                        del self._pages[agent_id]
                    raise
        return page

    async def close(self, page: Page) -> None:
        async with self._lock:
            pages = self._pages.get(page.agent_id, set())
            pages.discard(page)
            if pages:
                return
            self._pages.pop(page.agent_id, None)
            topics = set(agent_topics(page.agent_id))
            for link in self._links:
                if link.topics & topics:
                    link.topics -= topics
                    await self._put_topics(link)

    # -- channels -------------------------------------------------------------------------------

    async def _subscribe(self, agent_id: str) -> None:
        topics = agent_topics(agent_id)
        link = next((k for k in self._links if len(k.topics | set(topics)) <= MAX_TOPICS), None)
        if link is None:
            link = Link()
            await self._create_channel(link)
            self._links.append(link)
            link.task = asyncio.create_task(self._run(link))
        link.topics.update(topics)
        resp = await self._genesys.request("POST", f"/api/v2/notifications/channels/{link.id}/subscriptions",
                                           json=[{"id": t} for t in topics])
        if resp.status_code == 404:
            return  # the channel just ended: its renewal subscribes the topics
        resp.raise_for_status()

    async def _create_channel(self, link: Link) -> None:
        resp = await self._genesys.request("POST", "/api/v2/notifications/channels")
        resp.raise_for_status()
        channel = resp.json()
        link.id, link.connect_uri = channel["id"], channel["connectUri"]

    async def _put_topics(self, link: Link) -> None:
        try:
            if link.topics:
                await self._genesys.request("PUT", f"/api/v2/notifications/channels/{link.id}/subscriptions",
                                            json=[{"id": t} for t in sorted(link.topics)])
            else:
                await self._genesys.request("DELETE", f"/api/v2/notifications/channels/{link.id}/subscriptions")
        except httpx.HTTPError as exc:  # a renewal sets the topics again anyway
            log.warning("notification unsubscribe failed", error=type(exc).__name__)

    async def _renew(self, link: Link) -> None:
        """A new channel with the link's topics; retried until Genesys answers."""
        backoff = 1.0
        while True:
            try:
                async with self._lock:
                    await self._create_channel(link)
                    if link.topics:
                        resp = await self._genesys.request(
                            "PUT", f"/api/v2/notifications/channels/{link.id}/subscriptions",
                            json=[{"id": t} for t in sorted(link.topics)])
                        resp.raise_for_status()
                self.renewals += 1
                return
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                log.warning("notification channel renewal failed", error=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)

    async def _run(self, link: Link) -> None:
        """The link's socket; when it ends for any reason: renew, reconnect, catch up."""
        first = True
        while True:
            try:
                async with websockets.connect(link.connect_uri) as ws:
                    if not first:
                        await self._catch_up(link)
                    first = False
                    for page in self._pages_of(link):
                        page.queue.put_nowait({"type": "ready"})
                    async for message in ws:
                        envelope = json.loads(message)
                        topic = envelope.get("topicName") or ""
                        if topic == SOCKET_CLOSING:
                            log.info("notification channel closing: renewing")
                            break
                        self._dispatch(topic, envelope.get("eventBody") or {})
            except (OSError, websockets.WebSocketException, ValueError) as exc:
                log.warning("notification socket ended", error=type(exc).__name__)
                await asyncio.sleep(0.5)
            first = False
            await self._renew(link)

    def _pages_of(self, link: Link) -> list[Page]:
        return [p for agent, pages in self._pages.items() if set(agent_topics(agent)) & link.topics for p in pages]

    def _dispatch(self, topic: str, body: dict[str, Any]) -> None:
        match = _USER_TOPIC.match(topic)
        if not match:
            return
        agent_id = match.group(1)
        event = self._event(body, agent_id)
        if event is not None:
            for page in list(self._pages.get(agent_id, ())):
                page.queue.put_nowait({"type": "conversation", **event})

    async def _catch_up(self, link: Link) -> None:
        """Events may have been missed while the channel was renewed: each agent's active
        conversations, read with one of their pages' own tokens."""
        for agent_id in [a for a in list(self._pages) if set(agent_topics(a)) & link.topics]:
            page = next(iter(self._pages.get(agent_id, ())), None)
            if page is None:
                continue
            try:
                resp = await self._http.get(f"{self._api}/api/v2/conversations",
                                            headers={"Authorization": f"Bearer {page.token}"})
            except httpx.HTTPError as exc:
                log.warning("conversation catch-up failed", error=type(exc).__name__)
                continue
            if resp.status_code != 200:
                continue
            for conversation in resp.json().get("entities") or []:
                self._dispatch(f"v2.users.{agent_id}.conversations", conversation)
