"""Everything a request handler needs, hung on app.state.ctx."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from fastapi import Request

from .auth import RateLimiter, TokenService
from .faults import Faults
from .settings import EmulatorSettings, RuntimeConfig
from .store import Store


@dataclass
class Stats:
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, route: str) -> None:
        with self._lock:
            self.counts[route] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.counts.items()))

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


@dataclass
class Context:
    settings: EmulatorSettings
    store: Store
    runtime: RuntimeConfig
    tokens: TokenService
    limiter: RateLimiter
    faults: Faults
    stats: Stats


def ctx(request: Request) -> Context:
    return request.app.state.ctx


def stored(request: Request, kind: str, entity_id: str, noun: str) -> dict:
    """An entity of the org's store, or Genesys's 404 ErrorBody naming it."""
    from .errors import not_found

    doc = ctx(request).store.get(kind, entity_id)
    if doc is None:
        raise not_found(f"{noun} {entity_id} not found")
    return doc
