"""Counting the API requests one piece of work makes, per external system.

A sync run reports "API requests per system"; the connections are shared by every activity
of a worker, so a process-wide counter can't tell runs apart. A `Meter` set in a context
variable can: the connections' response hooks count into whichever meter is current, and
`asyncio.to_thread` copies the context, so a meter follows its activity into threads.
The Salesforce daily allowance (`Sforce-Limit-Info: api-usage=N/M`) is remembered too.
"""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass
class Meter:
    salesforce: int = 0
    genesys: int = 0
    genesys_throttled: int = 0          # 429s (each waited out and retried)
    salesforce_used: int | None = None  # the daily allowance, as of the last response
    salesforce_max: int | None = None

    @property
    def salesforce_share(self) -> float | None:
        if not self.salesforce_used or not self.salesforce_max:
            return None
        return self.salesforce_used / self.salesforce_max


_current: ContextVar[Meter | None] = ContextVar("callbridge_meter", default=None)
# The newest allowance any response showed, for work outside a meter (the allowance check).
last_allowance = Meter()


@contextlib.contextmanager
def metering() -> Iterator[Meter]:
    meter = Meter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def count_salesforce(limit_info: str | None) -> None:
    meter = _current.get()
    if meter is not None:
        meter.salesforce += 1
    match = _USAGE.search(limit_info or "")
    if match:
        used, total = int(match[1]), int(match[2])
        last_allowance.salesforce_used, last_allowance.salesforce_max = used, total
        if meter is not None:
            meter.salesforce_used, meter.salesforce_max = used, total


def count_genesys(status: int) -> None:
    meter = _current.get()
    if meter is not None:
        meter.genesys += 1
        if status == 429:
            meter.genesys_throttled += 1
