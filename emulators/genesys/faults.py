"""Injected faults for resilience tests: latency, random 5xx, and deterministic one-shot rules.

POST /_emulator/faults merges:
  latency_ms    every /api/v2 request waits this long first
  error_rate    0..1 chance that an /api/v2 request fails with error_status (default 503)
  delay_next    [{"method", "path_regex", "seconds", "count", "after"?}]  the next `count` matches
                sleep — before they are handled, or with "after": true once handled and before the
                answer goes out (a client that gives up meanwhile never hears of a done request)
  fail_next     [{"method", "path_regex", "status", "count"}]   the next `count` matches fail
  fail_entity_next [{"method", "path_regex", "status", "count"}] in bulk requests that match, the
                next `count` entities fail on their own (a per-entity error in the results;
                retryable when 5xx or 429, as BulkEntityError's `retryable` says)
Rules apply to /api/v2 and /oauth paths (never to /_emulator, so tests can always clean up).
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import GenesysError


@dataclass
class Rule:
    method: str | None
    path_regex: str
    count: int
    seconds: float = 0.0
    after: bool = False
    status: int = 503
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and bool(self._pattern.search(path))

    def public(self, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path_regex": self.path_regex, "count": self.count}
        if kind == "delay_next":
            out["seconds"], out["after"] = self.seconds, self.after
        else:
            out["status"] = self.status
        return out


def _rule(kind: str, raw: Any) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("path_regex", ".*"), str):
        raise ValueError(f"{kind} rules are objects with method, path_regex, count")
    count = int(raw.get("count", 1))
    if count < 1:
        raise ValueError("count must be >= 1")
    method = raw.get("method")
    try:
        if kind == "delay_next":
            return Rule(method, raw.get("path_regex", ".*"), count, seconds=float(raw["seconds"]),
                        after=bool(raw.get("after", False)))
        status = int(raw.get("status", 503))
        if not 400 <= status <= 599:
            raise ValueError("status must be 4xx or 5xx")
        return Rule(method, raw.get("path_regex", ".*"), count, status=status)
    except KeyError as exc:
        raise ValueError(f"{kind} rule needs {exc.args[0]}") from None
    except re.error as exc:
        raise ValueError(f"bad path_regex: {exc}") from None


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self.latency_ms = 0
        self.error_rate = 0.0
        self.error_status = 503
        self.delay_next: list[Rule] = []
        self.fail_next: list[Rule] = []
        self.fail_entity_next: list[Rule] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def merge(self, raw: dict[str, Any]) -> None:
        known = {"latency_ms", "error_rate", "error_status", "delay_next", "fail_next", "fail_entity_next"}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        # Validate everything before changing anything.
        latency = int(raw.get("latency_ms", self.latency_ms))
        rate = float(raw.get("error_rate", self.error_rate))
        status = int(raw.get("error_status", self.error_status))
        if latency < 0 or not 0.0 <= rate <= 1.0 or not 500 <= status <= 599:
            raise ValueError("latency_ms >= 0, 0 <= error_rate <= 1, error_status 5xx")
        delays = [_rule("delay_next", r) for r in _as_list(raw.get("delay_next", []))]
        fails = [_rule("fail_next", r) for r in _as_list(raw.get("fail_next", []))]
        entity_fails = [_rule("fail_next", r) for r in _as_list(raw.get("fail_entity_next", []))]
        with self._lock:
            self.fail_entity_next.extend(entity_fails)
            self.latency_ms, self.error_rate, self.error_status = latency, rate, status
            self.delay_next.extend(delays)
            self.fail_next.extend(fails)

    def clear(self) -> None:
        with self._lock:
            self.latency_ms, self.error_rate, self.error_status = 0, 0.0, 503
            self.delay_next.clear()
            self.fail_next.clear()
            self.fail_entity_next.clear()

    def public(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "error_rate": self.error_rate,
                "error_status": self.error_status,
                "delay_next": [r.public("delay_next") for r in self.delay_next],
                "fail_next": [r.public("fail_next") for r in self.fail_next],
                "fail_entity_next": [r.public("fail_next") for r in self.fail_entity_next],
            }

    def entity_fault(self, method: str, path: str) -> GenesysError | None:
        """The error one entity of a bulk request fails with, if a rule says so."""
        with self._lock:
            status = _consume(self.fail_entity_next, method, path, lambda r: r.status)
        return GenesysError(status) if status is not None else None

    def plan(self, method: str, path: str) -> tuple[float, GenesysError | None, float]:
        """Seconds to wait first, the error to answer with (if any), seconds to wait after handling."""
        with self._lock:
            delay = self.latency_ms / 1000.0 if path.startswith("/api/v2") else 0.0
            after = 0.0
            rule = _consume(self.delay_next, method, path, lambda r: r)
            if rule is not None:
                if rule.after:
                    after = rule.seconds
                else:
                    delay += rule.seconds
            status = _consume(self.fail_next, method, path, lambda r: r.status)
            if status is None and path.startswith("/api/v2") and self.error_rate > 0:
                if self._random.random() < self.error_rate:
                    status = self.error_status
        return delay, (GenesysError(status) if status is not None else None), after


def _consume(rules: list[Rule], method: str, path: str, value):  # type: ignore[no-untyped-def]
    for rule in rules:
        if rule.matches(method, path):
            rule.count -= 1
            if rule.count <= 0:
                rules.remove(rule)
            return value(rule)
    return None


def _as_list(raw: Any) -> list[Any]:
    if isinstance(raw, dict):
        return [raw]
    if not isinstance(raw, list):
        raise ValueError("rules must be a list of objects")
    return raw
