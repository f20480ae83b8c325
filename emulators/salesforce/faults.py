"""Injected faults: latency, random errors, lock contention, limits, and deterministic rules.

Rules (`fail_next`, `delay_next`) match a request's method and path by regex; composite
subrequests are matched by their own method and url, so a test can fail the second step
of a composite exactly. Record rules (`fail_records`) hit single records wherever they are
written — one record of an sObject Collection, a composite subrequest, a single-record call —
and answer with Salesforce's per-record error (see record_faults.py).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from . import ids
from .errors import ApiError
from .record_faults import RecordRule

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


# z of the 99th percentile of a standard normal distribution.
_Z99 = 2.3263478740408408


@dataclass
class Latency:
    """Added latency: fixed, uniform between min and max, or lognormal given its median and p99."""

    distribution: str = "fixed"
    value: float = 0.0  # fixed
    min: float = 0.0  # uniform
    max: float = 0.0
    median: float = 0.0  # lognormal
    p99: float = 0.0

    @classmethod
    def parse(cls, spec: object) -> "Latency":
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            if spec < 0:
                raise ValueError("latency_ms must be >= 0")
            return cls("fixed", float(spec))
        if not isinstance(spec, dict):
            raise ValueError("latency_ms is a number of milliseconds or {distribution: ...}")
        kind = spec.get("distribution", "fixed")
        if kind == "fixed":
            return cls.parse(float(spec.get("value", spec.get("ms", 0))))
        if kind == "uniform":
            lo, hi = float(spec["min"]), float(spec["max"])
            if not 0 <= lo <= hi:
                raise ValueError("uniform latency needs 0 <= min <= max")
            return cls("uniform", min=lo, max=hi)
        if kind == "lognormal":
            median, p99 = float(spec["median"]), float(spec["p99"])
            if not 0 < median <= p99:
                raise ValueError("lognormal latency needs 0 < median <= p99")
            return cls("lognormal", median=median, p99=p99)
        raise ValueError(f"unknown latency distribution: {kind!r} (fixed, uniform or lognormal)")

    def sample(self, rng: random.Random) -> float:
        """Milliseconds to wait for one request."""
        if self.distribution == "uniform":
            return rng.uniform(self.min, self.max)
        if self.distribution == "lognormal":
            sigma = (math.log(self.p99) - math.log(self.median)) / _Z99
            return rng.lognormvariate(math.log(self.median), sigma)
        return self.value

    def describe(self) -> float | dict:
        if self.distribution == "uniform":
            return {"distribution": "uniform", "min": self.min, "max": self.max}
        if self.distribution == "lognormal":
            return {"distribution": "lognormal", "median": self.median, "p99": self.p99}
        return self.value

    def __bool__(self) -> bool:
        return self.distribution != "fixed" or self.value > 0


@dataclass
class Faults:
    latency_ms: Latency = field(default_factory=Latency)
    error_rate: float = 0.0
    error_status: int = 503
    unable_to_lock_row_rate: float = 0.0
    request_limit_exceeded: bool = False
    fail_next: list[Rule] = field(default_factory=list)
    delay_next: list[Rule] = field(default_factory=list)
    fail_records: list[RecordRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    def merge(self, body: dict) -> None:
        """Merge a POST /_emulator/faults body; raises ValueError on a malformed one."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        known = {"latency_ms", "error_rate", "error_status", "unable_to_lock_row_rate", "request_limit_exceeded",
                 "fail_next", "delay_next", "fail_records", "seed"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if "latency_ms" in body:
            self.latency_ms = Latency.parse(body["latency_ms"])
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
        for item in body.get("fail_records") or []:
            self.fail_records.append(RecordRule.parse(item))
        for item in body.get("delay_next") or []:
            self.delay_next.append(Rule(item.get("method"), _regex(item), int(item.get("count", 1)),
                                        seconds=float(item["seconds"])))

    def snapshot(self) -> dict:
        return {
            "latency_ms": self.latency_ms.describe(), "error_rate": self.error_rate, "error_status": self.error_status,
            "unable_to_lock_row_rate": self.unable_to_lock_row_rate,
            "request_limit_exceeded": self.request_limit_exceeded,
            "fail_next": [r.describe("fail") for r in self.fail_next],
            "delay_next": [r.describe("delay") for r in self.delay_next],
            "fail_records": [r.describe() for r in self.fail_records],
        }

    def latency_seconds(self) -> float:
        return self.latency_ms.sample(self.rng) / 1000 if self.latency_ms else 0.0

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


def take_record_failure(faults: "Faults", operation: str, sobject: str, record_id: str | None,
                        row: dict) -> ApiError | None:
    """The per-record error for this write, if a record rule matches it (consumes its count)."""
    for rule in faults.fail_records:
        if rule.matches(operation, sobject, record_id, row):
            rule.count -= 1
            if rule.count <= 0:
                faults.fail_records.remove(rule)
            return rule.error(sobject, record_id, row)
    return None
