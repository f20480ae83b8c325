"""Injected faults: latency, random errors, lock contention, limits, and deterministic rules.

Rules (`fail_next`, `delay_next`) match a request's method and path by regex; composite
subrequests are matched by their own method and url, so a test can fail the second step
of a composite exactly.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from . import ids
from .errors import ApiError

_DEFAULT_MESSAGES = {
    "SERVER_UNAVAILABLE": "Server temporarily unavailable",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "INVALID_SESSION_ID": "Session expired or invalid",
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record",
    "REQUEST_RUNNING_TOO_LONG": "Your request was running for too long, and has been stopped.",
}


def unknown_exception() -> ApiError:
    ref = f"{random.randint(100000000, 999999999)}-{random.randint(10000, 99999)} ({random.randint(-2**31, -1)})"
    return ApiError(500, "UNKNOWN_EXCEPTION",
                    f"An unexpected error occurred. Please include this ErrorId if you contact support: {ref}")


def error_for(status: int, code: str | None = None, message: str | None = None) -> ApiError:
    if status == 500 and code in (None, "UNKNOWN_EXCEPTION") and message is None:
        return unknown_exception()
    code = code or {503: "SERVER_UNAVAILABLE", 403: "REQUEST_LIMIT_EXCEEDED", 401: "INVALID_SESSION_ID",
                    500: "UNKNOWN_EXCEPTION", 404: "NOT_FOUND"}.get(status, "UNKNOWN_EXCEPTION")
    msg = message or _DEFAULT_MESSAGES.get(code) or ("The requested resource does not exist" if code == "NOT_FOUND"
                                                     else code.replace("_", " ").lower())
    fields = [] if code == "UNABLE_TO_LOCK_ROW" else None
    return ApiError(status, code, msg, fields)


@dataclass
class Rule:
    method: str | None
    path_regex: str
    count: int
    status: int = 503
    error_code: str | None = None
    message: str | None = None
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and \
            re.search(self.path_regex, path) is not None

    def describe(self, kind: str) -> dict:
        out = {"method": self.method, "path_regex": self.path_regex, "count": self.count}
        if kind == "fail":
            out.update(status=self.status, errorCode=self.error_code, message=self.message)
        else:
            out["seconds"] = self.seconds
        return out


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    unable_to_lock_row_rate: float = 0.0
    request_limit_exceeded: bool = False
    fail_next: list[Rule] = field(default_factory=list)
    delay_next: list[Rule] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    def merge(self, body: dict) -> None:
        """Merge a POST /_emulator/faults body; raises ValueError on a malformed one."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        known = {"latency_ms", "error_rate", "error_status", "unable_to_lock_row_rate", "request_limit_exceeded",
                 "fail_next", "delay_next", "seed"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if "latency_ms" in body:
            self.latency_ms = float(body["latency_ms"])
        if "error_rate" in body:
            self.error_rate = _rate(body["error_rate"])
        if "error_status" in body:
            self.error_status = int(body["error_status"])
            if self.error_status not in (500, 503):
                raise ValueError("error_status must be 500 or 503")
        if "unable_to_lock_row_rate" in body:
            self.unable_to_lock_row_rate = _rate(body["unable_to_lock_row_rate"])
        if "request_limit_exceeded" in body:
            self.request_limit_exceeded = bool(body["request_limit_exceeded"])
        if "seed" in body:
            self.rng.seed(body["seed"])
        for item in body.get("fail_next") or []:
            self.fail_next.append(Rule(item.get("method"), _regex(item), int(item.get("count", 1)),
                                       status=int(item.get("status", 503)), error_code=item.get("errorCode"),
                                       message=item.get("message")))
        for item in body.get("delay_next") or []:
            self.delay_next.append(Rule(item.get("method"), _regex(item), int(item.get("count", 1)),
                                        seconds=float(item["seconds"])))

    def snapshot(self) -> dict:
        return {
            "latency_ms": self.latency_ms, "error_rate": self.error_rate, "error_status": self.error_status,
            "unable_to_lock_row_rate": self.unable_to_lock_row_rate,
            "request_limit_exceeded": self.request_limit_exceeded,
            "fail_next": [r.describe("fail") for r in self.fail_next],
            "delay_next": [r.describe("delay") for r in self.delay_next],
        }

    def take_delay(self, method: str, path: str) -> float:
        return _take(self.delay_next, method, path).seconds if _has(self.delay_next, method, path) else 0.0

    def take_failure(self, method: str, path: str, record_id: str | None) -> ApiError | None:
        """The error to answer this request with, if any fault applies (consumes rule counts)."""
        if _has(self.fail_next, method, path):
            rule = _take(self.fail_next, method, path)
            return error_for(rule.status, rule.error_code, rule.message)
        if self.error_rate and self.rng.random() < self.error_rate:
            return error_for(self.error_status)
        if self.unable_to_lock_row_rate and method.upper() in ("POST", "PATCH", "PUT", "DELETE") \
                and "/sobjects/" in path and self.rng.random() < self.unable_to_lock_row_rate:
            rid = record_id or ids.make_id("001", self.rng.randint(1, 10**6))
            return ApiError(400, "UNABLE_TO_LOCK_ROW",
                            f"unable to obtain exclusive access to this record or 1 records: {rid}", [])
        return None


def _rate(value: object) -> float:
    rate = float(value)  # type: ignore[arg-type]
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rates are between 0 and 1")
    return rate


def _regex(item: dict) -> str:
    pattern = item.get("path_regex", "")
    re.compile(pattern)
    return pattern


def _has(rules: list[Rule], method: str, path: str) -> bool:
    return any(r.matches(method, path) for r in rules)


def _take(rules: list[Rule], method: str, path: str) -> Rule:
    for rule in rules:
        if rule.matches(method, path):
            rule.count -= 1
            if rule.count <= 0:
                rules.remove(rule)
            return rule
    raise LookupError(path)
