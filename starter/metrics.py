"""The starter's operations: GET /metrics, in-flight webhook tracking, and the SIGTERM drain.

On SIGTERM the starter keeps listening: new webhooks get 503 + Retry-After (Genesys redelivers,
and a load balancer stops routing once /healthz says 503), webhooks already in flight finish
starting their workflows, and only then does uvicorn shut down (or after
`starter_drain_timeout_seconds`). A second signal exits at once.
"""

from __future__ import annotations

import json
import time

import structlog
import uvicorn
from fastapi import APIRouter, Response

from callbridge.core import metrics

log = structlog.get_logger("callbridge.starter")

WEBHOOK_PREFIX = b"/webhooks/"
_REFUSED = json.dumps({"error": "shutting down"}).encode()


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self.since = 0.0
        self.in_flight = 0

    def begin(self) -> None:
        if not self.draining:
            self.draining, self.since = True, time.monotonic()
            log.info("starter draining", in_flight=self.in_flight)


class DrainMiddleware:
    """Pure ASGI (no body buffering): counts webhooks in flight, refuses new ones while draining."""

    def __init__(self, app, drain: Drain) -> None:
        self.app, self.drain = app, drain

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("raw_path") or scope["path"].encode()
        if self.drain.draining and (path.startswith(WEBHOOK_PREFIX) or path == b"/healthz"):
            if path.startswith(WEBHOOK_PREFIX):
                metrics.WEBHOOKS_RECEIVED.labels(_endpoint(path)).inc()
                metrics.WEBHOOKS_REJECTED.labels(_endpoint(path), "shutting_down").inc()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", b"5"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": _REFUSED})
            return
        if not path.startswith(WEBHOOK_PREFIX):
            return await self.app(scope, receive, send)
        self.drain.in_flight += 1
        metrics.WEBHOOKS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.in_flight -= 1
            metrics.WEBHOOKS_IN_FLIGHT.dec()


def _endpoint(path: bytes) -> str:
    # The route's last segment ("conversation-ended"): a closed set, never caller data.
    name = path.decode("latin-1").rstrip("/").rsplit("/", 1)[-1]
    return name if name in ("conversation-ended",) else "other"


class DrainingServer(uvicorn.Server):
    """uvicorn, with a first SIGTERM/SIGINT that drains before exiting."""

    def __init__(self, config: uvicorn.Config, drain: Drain, timeout: float) -> None:
        super().__init__(config)
        self.drain, self.timeout = drain, timeout

    def handle_exit(self, sig: int, frame) -> None:
        if self.drain.draining:  # a second signal: stop now
            return super().handle_exit(sig, frame)
        # Not re-raised after shutdown (uvicorn's default): a drained starter exits 0.
        self.drain.begin()

    async def on_tick(self, counter: int) -> bool:
        if self.drain.draining and not self.should_exit:
            idle = self.drain.in_flight == 0
            if idle or time.monotonic() - self.drain.since > self.timeout:
                log.info("starter drained", in_flight=self.drain.in_flight)
                self.should_exit = True
        return await super().on_tick(counter)


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return router
